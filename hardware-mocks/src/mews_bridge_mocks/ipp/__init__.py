"""IPP printers for tests, the demo and the benchmark: CUPS' real ``ippeveprinter`` run on loopback, and a
small simulator built from the ``ipp_printer`` plugin's codec for machines without it."""

#!/usr/bin/env bash
# A real Asterisk 22 on loopback for the asterisk_pbx integration test (plugins/asterisk_pbx/tests/
# test_real_asterisk.py). Debian 12 has no Asterisk package, so it runs in a Debian sid chroot built
# with mmdebstrap from the Debian mirror apt already uses on this machine. It runs the plugin's sample
# dialplan and manager/CDR configuration from plugins/asterisk_pbx/docs/, with the trunk replaced by
# a fake carrier in the dialplan ([fake-pstn]) so that calls need no SIP, and fake room phones
# ([fake-phones]) that answer wake-up calls or not.
#
#   run-real-asterisk.sh build    build the chroot unless it exists (needs root; ~2 min, ~350 MB)
#   run-real-asterisk.sh start    build if needed, write the configuration, start Asterisk, wait for AMI
#   run-real-asterisk.sh stop     stop it
#   run-real-asterisk.sh status   exit 0 if Asterisk's AMI answers
#
# Environment: MEWS_BRIDGE_ASTERISK_ROOT (chroot, default /var/cache/mews-bridge/asterisk-sid),
# MEWS_BRIDGE_ASTERISK_AMI_PORT (5038), MEWS_BRIDGE_ASTERISK_SECRET (the AMI user mewsbridge's secret),
# MEWS_BRIDGE_ASTERISK_TZ (the PBX's time zone for CDR times, default Europe/Warsaw).
set -euo pipefail

ROOT=${MEWS_BRIDGE_ASTERISK_ROOT:-/var/cache/mews-bridge/asterisk-sid}
PORT=${MEWS_BRIDGE_ASTERISK_AMI_PORT:-5038}
SECRET=${MEWS_BRIDGE_ASTERISK_SECRET:-mews-bridge-test}
PBX_TZ=${MEWS_BRIDGE_ASTERISK_TZ:-Europe/Warsaw}
DOCS=$(cd "$(dirname "$0")/../../plugins/asterisk_pbx/docs" && pwd)
CONF=/etc/mews-bridge-test        # inside the chroot
PACKAGES=asterisk,asterisk-modules,asterisk-config,asterisk-core-sounds-en-gsm,tzdata,procps

say() { echo "run-real-asterisk: $*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    say "needs root (chroot and mmdebstrap); run it with sudo"
    exit 2
  fi
}

debian_mirror() {
  # The mirror apt uses here for this Debian release: no host is written into this script.
  . /etc/os-release
  apt-get indextargets --format '$(REPO_URI)' "Origin: Debian" "Label: Debian" "Codename: ${VERSION_CODENAME}" |
    sort -u | head -n 1
}

build() {
  need_root
  if [ -x "$ROOT/usr/sbin/asterisk" ]; then
    return 0
  fi
  if ! command -v mmdebstrap >/dev/null; then
    say "installing mmdebstrap"
    if ! apt-cache show mmdebstrap >/dev/null 2>&1; then
      apt-get update -q >/dev/null
    fi
    apt-get install -y -q mmdebstrap >/dev/null
  fi
  local mirror
  mirror=$(debian_mirror)
  if [ -z "$mirror" ]; then
    say "apt knows no Debian mirror for this release (run apt-get update)"
    exit 1
  fi
  say "building a Debian sid chroot with Asterisk in $ROOT from $mirror"
  discard "$ROOT.partial"
  mkdir -p "$(dirname "$ROOT")"
  # Check-Valid-Until: sid's Release file can look expired when clocks or mirrors are skewed.
  mmdebstrap --variant=apt --quiet --aptopt='Acquire::Check-Valid-Until "false"' \
    --include="$PACKAGES" sid "$ROOT.partial" "$mirror"
  mv "$ROOT.partial" "$ROOT"
  say "chroot ready: $(chroot "$ROOT" /usr/sbin/asterisk -V)"
}

discard() {
  # A build that was cut short may leave /dev, /proc or /sys bound inside: unmount before deleting,
  # and never delete across a mount point.
  local target
  if [ -e "$1" ]; then
    findmnt -R -n -l -o TARGET "$1" 2>/dev/null | sort -r | while read -r target; do
      umount -l "$target" || true
    done
    rm -rf --one-file-system "$1"
  fi
}

module_dir() {
  local dir
  for dir in "$ROOT"/usr/lib/*/asterisk/modules "$ROOT"/usr/lib/asterisk/modules; do
    if [ -d "$dir" ]; then
      echo "${dir#"$ROOT"}"
      return
    fi
  done
  say "no Asterisk modules in $ROOT"
  exit 1
}

configure() {
  local etc="$ROOT$CONF"
  rm -rf "$etc" "$ROOT/var/lib/mews-bridge-test" "$ROOT/var/log/mews-bridge-test"
  mkdir -p "$etc" "$ROOT/var/lib/mews-bridge-test" "$ROOT/var/log/mews-bridge-test" \
    "$ROOT/var/spool/mews-bridge-test" "$ROOT/run/mews-bridge-test"
  # Asterisk writes CDR times in the host's local time, from /etc/localtime (it ignores TZ).
  ln -sf "/usr/share/zoneinfo/$PBX_TZ" "$ROOT/etc/localtime"
  cat >"$etc/asterisk.conf" <<EOF
[directories]
astetcdir => $CONF
astmoddir => $(module_dir)
astvarlibdir => /var/lib/asterisk
astdbdir => /var/lib/mews-bridge-test
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => /var/spool/mews-bridge-test
astrundir => /run/mews-bridge-test
astlogdir => /var/log/mews-bridge-test

[options]
verbose = 2
EOF
  # Only what the sample dialplan and the bridge use; Local channels need no SIP stack.
  cat >"$etc/modules.conf" <<'EOF'
[modules]
autoload = no
load => pbx_config.so
load => app_dial.so
load => app_stack.so
load => app_playback.so
load => app_userevent.so
load => app_sayunixtime.so
load => func_db.so
load => func_cdr.so
load => func_channel.so
load => func_callerid.so
load => func_logic.so
load => func_strings.so
load => func_global.so
load => cdr_manager.so
load => bridge_simple.so
load => res_timing_timerfd.so
load => codec_ulaw.so
load => codec_alaw.so
load => codec_gsm.so
load => format_gsm.so
load => format_wav.so
EOF
  cat >"$etc/logger.conf" <<'EOF'
[logfiles]
messages.log => notice,warning,error
console => notice,warning,error
EOF
  cat >"$etc/cdr.conf" <<'EOF'
[general]
enable = yes
unanswered = yes
congestion = yes
batch = no
EOF
  cp "$DOCS/cdr_manager.conf.sample" "$etc/cdr_manager.conf"
  sed -e "s/^secret = change-me/secret = $SECRET/" -e "s/^port = 5038/port = $PORT/" \
    "$DOCS/manager.conf.sample" >"$etc/manager.conf"
  # The sample dialplan, its trunk replaced by the fake carrier below.
  sed -e 's|PJSIP/${EXTEN}@trunk|Local/${EXTEN}@fake-pstn|' "$DOCS/extensions.conf.sample" >"$etc/extensions.conf"
  cat >>"$etc/extensions.conf" <<'EOF'

[fake-pstn]
; Test carrier: rings for a second, answers, talks for DB(test/talk) seconds (default 3), hangs up.
exten => _X.,1,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(${IF(${DB_EXISTS(test/talk)}?${DB_RESULT}:3)})
 same => n,Hangup()

[fake-phones]
; Test room phones for wake-up calls (mews-bridge option wakeup.channel = Local/{extension}@fake-phones):
; picked up after a second, unless DB(test/noanswer/<extension>) exists: then they only ring.
exten => _X.,1,Ringing()
 same => n,GotoIf(${DB_EXISTS(test/noanswer/${EXTEN})}?ring)
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(10)
 same => n,Hangup()
 same => n(ring),Wait(120)
 same => n,Hangup()
EOF
}

ami_up() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && head -c 22 <&3 | grep -q "Asterisk Call Manager") 2>/dev/null
}

start() {
  build
  if ami_up; then
    say "something already answers AMI on port $PORT; stop it first"
    exit 1
  fi
  configure
  say "starting Asterisk (AMI on 127.0.0.1:$PORT, time zone $PBX_TZ)"
  setsid chroot "$ROOT" /usr/sbin/asterisk -C "$CONF/asterisk.conf" -f -n -g \
    >"$ROOT/var/log/mews-bridge-test/console.log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 100); do
    if ami_up; then
      say "Asterisk is up (pid $pid)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  say "Asterisk did not open its AMI port; its console said:"
  tail -n 20 "$ROOT/var/log/mews-bridge-test/console.log" >&2 || true
  exit 1
}

stop() {
  need_root
  if [ -x "$ROOT/usr/sbin/asterisk" ] && ami_up; then
    chroot "$ROOT" /usr/sbin/asterisk -C "$CONF/asterisk.conf" -rx 'core stop now' >/dev/null 2>&1 || true
    for _ in $(seq 50); do
      ami_up || return 0
      sleep 0.1
    done
    say "Asterisk is still answering on port $PORT"
    exit 1
  fi
}

case "${1:-start}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) ami_up ;;
  *)
    echo "usage: $0 build|start|stop|status" >&2
    exit 2
    ;;
esac

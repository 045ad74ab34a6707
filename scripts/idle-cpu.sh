#!/usr/bin/env bash
# Idle CPU of `actorgraph serve telematics`: starts it, lets it settle, then reads utime+stime from
# /proc/PID/stat over a 5-second window with no traffic, and prints the share of one core.
# Usage: scripts/idle-cpu.sh [path/to/actorgraph] [udp-port]
set -euo pipefail
bin=${1:-.build/release/actorgraph}
port=${2:-7199}
"$bin" serve telematics --port "$port" >/dev/null 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
sleep 3
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
a=$(ticks); sleep 5; b=$(ticks)
python3 -c "print(f'idle serve telematics: {($b - $a) / $hz / 5 * 100:.2f} % of one core over 5 s ({$b - $a} ticks at {$hz} Hz)')"

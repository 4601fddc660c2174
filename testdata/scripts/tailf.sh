#!/bin/bash
# tailf.sh DIR: tail -f follows a file in DIR while lines are appended to
# it. tail's sleep interval is an hour, so only inotify can show it the
# appended lines in time; waits are bounded so that a failure ends.
set -u
f="$1/log"
out="$1/out"
echo first >"$f"
: >"$out"
tail -s 3600 -f "$f" >>"$out" &
pid=$!
waitfor() {
	timeout 30 bash -c "until grep -qx '$1' '$out'; do sleep 0.05; done" || echo "no $1"
}
waitfor first
echo second >>"$f"
waitfor second
printf 'third\nfourth\n' >>"$f"
waitfor fourth
kill "$pid"
wait "$pid"
echo "tail: $?"
cat "$out"

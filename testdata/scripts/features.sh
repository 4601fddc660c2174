#!/bin/bash
# Bash features that lean on the kernel: subshells and pipelines (fork,
# pipes, wait), process substitution (/dev/fd), traps (signals), job
# control builtins, here-strings (temporary files or pipes).

greet() {
	local name=$1
	echo "hello, $name"
	return 3
}
greet world
echo "greet returned $?"

fib() {
	if (($1 < 2)); then echo "$1"; return; fi
	echo $(($(fib $(($1 - 1))) + $(fib $(($1 - 2)))))
}
echo "fib 7 = $(fib 7)"

fruits=(apple banana "cherry pie")
fruits+=(date)
echo "count ${#fruits[@]}: ${fruits[2]}; last ${fruits[-1]}"
for i in "${!fruits[@]}"; do printf '%d=%s\n' "$i" "${fruits[$i]}"; done
declare -A colour=([sky]=blue [grass]=green)
for k in $(printf '%s\n' "${!colour[@]}" | sort); do echo "$k is ${colour[$k]}"; done

printf 'c\nb\na\nb\n' | sort | uniq -c | sort -rn | head -2
echo "pipestatus: $(false | true | (exit 4); echo "${PIPESTATUS[@]}")"
set -o pipefail
false | true
echo "pipefail status $?"
set +o pipefail

diff <(printf 'one\ntwo\n') <(printf 'one\nthree\n')
echo "diff status $?"
while read -r line; do echo "read: $line"; done < <(seq 3)
paste <(seq 2) <(echo a; echo b)

trap 'echo "caught USR1"' USR1
kill -USR1 $$
trap 'echo "exit trap runs last"' EXIT
trap - USR1

sleep 0.2 & slow=$!
(exit 7) & fast=$!
wait -n
echo "wait -n got $?"
wait $slow
echo "slow exited $?"

read -r a b <<< "here string"
echo "a=$a b=$b"
tr a-z A-Z <<< "shout"
cat <<EOT
heredoc with $((6 * 7))
EOT

echo "nested: $(echo "one $(echo "two $(echo three)")")"

x=$( (echo sub; exit 5) )
echo "subshell output $x status $?"

for sig in INT TERM; do
	bash -c "trap 'echo got $sig; exit 0' $sig; kill -$sig \$\$; sleep 5"
done

echo "read from /dev/stdin: $(echo piped | cat /dev/stdin)"

case "$(uname -s)" in Linux) echo "kernel is Linux" ;; esac
[[ "abc123" =~ ^([a-z]+)([0-9]+)$ ]] && echo "regex ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
printf -v padded '%05d' 42
echo "printf -v $padded"
echo "${PWD:+pwd set} ${UNSET:-default} ${#fruits}"
i=0; until ((i >= 3)); do ((i++)); done; echo "until $i"

set -e
check() { echo "before failure"; false; echo "not reached"; }
check
echo "not reached either"

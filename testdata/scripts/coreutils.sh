#!/bin/bash
# Coreutils and friends over the fixture tree that userland_test.go makes
# in $1: tree/ is read-only material with fixed times, out/ takes what the
# commands write. Every command's exit status is shown with its output.

cd "$1" || exit 1
rm -rf out/* || exit 1

run() {
	echo "== $*"
	"$@"
	echo "-- status $?"
}

run ls -la --time-style=+%s tree tree/sub
run ls -lR --time-style=+%s tree
run ls -1 -S -r tree
run sort tree/words.txt
run sort -n -r -k2 tree/numbers.txt
run sort -u -t: -k1,1 tree/words.txt tree/words.txt
run find tree -name '*.txt' -type f
run find tree -mindepth 1 -printf '%y %m %s %p %l\n'
run find tree -newer tree/old.txt -type f
find tree -type f -print0 | sort -z | xargs -0 -n2 echo pair:
find tree -type f | sort | xargs wc -c
printf '%s\n' 3 1 2 | xargs -I{} sh -c 'echo item {}'
run stat -c '%n %s %a %A %F %U %G %u %g %h %Y' tree tree/words.txt tree/link tree/sub tree/exec.sh
run stat -L -c '%n %s %F' tree/link
run stat -f -c '%b %l' tree >/dev/null
run du -a tree
run du -sb tree
run du -h --apparent-size tree/sub
run id
run id -un
run id -Gn
run whoami
run groups
run env
run env -i A=1 B=two env
run env -u A GREETING=changed sh -c 'echo "A=${A-unset} GREETING=$GREETING"'
run grep -r needle tree
run grep -rn -i NEEDLE tree --include='*.txt'
run grep -rlc needle tree
run grep -c . tree/words.txt
run grep -E '^(apple|cherry)' tree/words.txt
run grep missing tree/words.txt
run sed -n '2,3p' tree/words.txt
run sed -e 's/an/AN/g' -e '/cherry/d' tree/words.txt
cp tree/words.txt out/edited.txt
run sed -i.bak 's/apple/APPLE/' out/edited.txt
run cat out/edited.txt out/edited.txt.bak
run awk -F: '{ n[$1]++ } END { for (k in n) print k, n[k] }' tree/words.txt
if command -v gawk >/dev/null; then
	run gawk 'BEGIN { PROCINFO["sorted_in"] = "@ind_str_asc" } { words[$1] = NR } END { for (w in words) printf "%s=%d\n", w, words[w]; print toupper(substr("gawk", 1, 2)), length("four"), 2 ** 10 }' tree/words.txt
	run gawk '{ sum += $2 } END { printf "%.2f\n", sum / NR }' tree/numbers.txt
fi
run tar --sort=name -czf out/tree.tgz tree
run tar -tzvf out/tree.tgz
run tar --sort=name -cJf out/tree.txz tree
run tar -tJf out/tree.txz
mkdir out/x
run tar -xJf out/tree.txz -C out/x
run diff -r tree out/x/tree
tar --sort=name -cf - tree | md5sum
gzip -9 -c tree/words.txt > out/words.gz
run gzip -dc out/words.gz
xz -c tree/numbers.txt > out/numbers.xz
run xz -dc out/numbers.xz
run diff -u --label a --label b tree/words.txt tree/numbers.txt
run diff tree/words.txt tree/words.txt
run cmp tree/words.txt tree/numbers.txt
run file tree/words.txt tree/link tree/sub tree/exec.sh tree/data.bin out/tree.tgz out/tree.txz
run file -L tree/link
run md5sum tree/words.txt tree/data.bin
run sha256sum tree/numbers.txt
run wc tree/words.txt tree/numbers.txt
head -c 5 tree/data.bin | od -An -tx1
run tail -n 2 tree/words.txt
run cut -d: -f2 tree/words.txt
run tr -s 'a-z' 'A-Z' < tree/words.txt
run readlink tree/link
run readlink -f tree/link
run realpath tree/sub/../words.txt
run basename "$PWD/tree/words.txt" .txt
run dirname "$PWD/tree/words.txt"
run date -u -d @1000000000 '+%Y-%m-%d %H:%M:%S'
run touch -d '2001-02-03 04:05:06 UTC' out/touched
run stat -c '%Y' out/touched
run cp -a tree out/copy
run ls -la --time-style=+%s out/copy/sub
run mv out/copy/words.txt out/copy/moved.txt
run ln -s moved.txt out/copy/newlink
run chmod 640 out/copy/moved.txt
run ls -l --time-style=+%s out/copy/moved.txt
run readlink out/copy/newlink
run rm -r out/copy
run ls out
run seq -s, 1 5
yes | head -3
run split -l 2 -d tree/words.txt out/part.
run cat out/part.00
run nl tree/words.txt
run comm -12 tree/words.txt tree/words.txt
run base64 tree/data.bin
run sum tree/words.txt
run expr 6 \* 7
run test -d tree/sub
run test -f tree/missing
run cat tree/missing
run ls tree/missing

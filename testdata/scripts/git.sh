#!/bin/bash
# git over a repository in $1/repo: init, add, commit, log, diff, branch,
# merge, gc and fsck. Fixed names and dates make the object names the
# same on every run.
set -u
cd "$1" || exit 1
rm -rf repo
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.com
export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.com
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
tick=1000000000
commit() {
	tick=$((tick + 60))
	GIT_AUTHOR_DATE="@$tick +0000" GIT_COMMITTER_DATE="@$tick +0000" git commit -q "$@"
}
run() {
	echo "== $*"
	"$@"
	echo "-- status $?"
}

run git init -q -b main repo
cd repo || exit 1
printf 'line %d\n' $(seq 1 20) > file.txt
mkdir -p src
echo 'int main(void) { return 0; }' > src/main.c
run git add file.txt src
commit -m "first commit"
sed -i 's/line 5$/line five/' file.txt
echo "new file" > new.txt
run git status --short
run git diff
run git add -A
commit -m "second commit"
run git switch -q -c topic
echo "topic work" >> new.txt
git add new.txt
commit -m "topic commit"
run git switch -q main
echo "main work" > other.txt
git add other.txt
commit -m "main commit"
tick=$((tick + 60))
GIT_AUTHOR_DATE="@$tick +0000" GIT_COMMITTER_DATE="@$tick +0000" run git merge -q --no-edit topic
run git log --graph --format='%h %an %ad %s' --date=unix
run git log --stat --format=%H -n 2
run git diff HEAD~2 HEAD -- file.txt new.txt
run git show --format=%s HEAD~1:new.txt
run git rev-parse HEAD HEAD^{tree}
run git gc -q
run git count-objects -v
run git fsck --no-progress
run git ls-files -s
run git cat-file -p HEAD
run git grep -n line -- file.txt
git log --format=%s | sort

#!/usr/bin/env bats
# tests/trees.bats: trees (issue 12): a directory served as a job, unpacked for jq-run's <in> and
# by jq-take -o; <outdir> results packed by jq-run and unpacked by the server into FILE.result/;
# hostile trees made here (python3 tarfile) PUT by a fake worker, each refused with its reason,
# nothing written outside and no partial result; tree results in --output-archive, the rerun rule
# for directory jobs (touch -d dates, no sleeps), and jq-put --wait of a tree result (a tar
# stream).  arch.c itself: tests/unit/test_arch.c.

# shellcheck disable=SC2154,SC2034 # $stderr, $output, $status are bats'; $line is wire.bash's;
# $greeting is read by hello_line

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup root sock worker
}

# jr ARG...: jq-run with the test's --tmpdir (stdout and stderr apart)
jr() {
	run --separate-stderr timeout -k 5 120 jq-run --tmpdir "$TMPD" "$@"
}

# no_tmp_left: jq-run removed every job directory
no_tmp_left() {
	run ls -A "$TMPD"
	assert_output ''
}

@test "trees: a directory job through jq-run: <in> is the tree, unpacked byte for byte" {
	mkdir -p "$D/photos/sub/deeper" "$D/photos/empty"
	head -c 300000 /dev/urandom >"$D/photos/big.bin"
	printf 'one\n' >"$D/photos/a b.txt"
	printf '' >"$D/photos/sub/zero"
	printf '#!/bin/sh\n' >"$D/photos/sub/run.sh"
	chmod 755 "$D/photos/sub/run.sh"
	printf 'deep\n' >"$D/photos/sub/deeper/c"
	ln -s sub/deeper/c "$D/photos/link"
	start_server --fresh "$D/photos/"	# the trailing slash is dropped
	jr "$SERVER" -- sh -c 'ls -R {in} >/dev/null && cp -a {in}/. {outdir}/'
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	run diff -r --no-dereference "$D/photos" "$D/photos.result"
	assert_success
	assert_equal "$(readlink "$D/photos.result/link")" sub/deeper/c
	[[ -x $D/photos.result/sub/run.sh ]]
	[[ -d $D/photos.result/empty ]]
	no_tmp_left
}

@test "trees: a directory job without <in> sends its tar stream to stdin" {
	mkdir -p "$D/t/s"
	printf 'x\n' >"$D/t/s/f"
	start_server --fresh "$D/t"
	jr "$SERVER" -- tar -tf -
	assert_success
	assert_equal "$(sort "$D/t.result")" "$(printf 's/\ns/f')"
}

@test "trees: jq-take -o PATH unpacks a directory job into the new directory PATH" {
	mkdir -p "$D/t/sub"
	head -c 5000 /dev/urandom >"$D/t/sub/r"
	printf 'y\n' >"$D/t/y"
	start_server --fresh "$D/t"
	run --separate-stderr jq-take -o "$D/got" "$SERVER"
	assert_success
	assert_handle 1
	run diff -r "$D/t" "$D/got"
	assert_success
	run ls -A "$D"
	refute_output --partial .jq-take-tree
}

@test "trees: an <outdir> job of 200 files; the result tree equals what the command made" {
	printf 'seed\n' >"$D/in/a.txt"
	start_server --fresh "$D/in/a.txt"
	jr "$SERVER" -- sh -c 'mkdir {outdir}/frames; i=0
		while [ $i -lt 200 ]; do printf "%s %d\n" "$(cat {in})" $i >{outdir}/frames/f$i.txt
			i=$((i + 1)); done'
	assert_success
	wait_server_exit
	mkdir -p "$D/want/frames"
	for ((i = 0; i < 200; i++)); do printf 'seed %d\n' "$i" >"$D/want/frames/f$i.txt"; done
	run diff -r "$D/want" "$D/in/a.txt.result"
	assert_success
	run ls -A "$D/in"
	assert_output "$(printf 'a.txt\na.txt.result')"
	no_tmp_left
}

@test "trees: an empty <outdir> is an empty tree result" {
	printf 'x' >"$D/in/e"
	start_server --fresh "$D/in/e"
	jr "$SERVER" -- true '{outdir}'
	assert_success
	wait_server_exit
	[[ -d $D/in/e.result ]]
	run ls -A "$D/in/e.result"
	assert_output ''
}

@test "trees: <outdir> with <out> is refused at start; a typo of it too" {
	run --separate-stderr jq-run 127.0.0.1:1 -- cp '<in>' '<out>' '<outdir>'
	assert_equal "$status" 2
	[[ $stderr == *"<out> and <outdir> cannot be combined"* ]]
	run --separate-stderr jq-run 127.0.0.1:1 -- cp '<in>' '<outdr>'
	assert_equal "$status" 2
	[[ $stderr == *"'outdr' looks like a mistyped placeholder"* ]]
}

@test "trees: an <outdir> holding a FIFO, or past --max-tree-entries, fails the job, saying why" {
	printf 'a' >"$D/in/a"
	printf 'b' >"$D/in/b"
	start_server --fresh --retries 0 "$D/in/a" "$D/in/b"
	jr --max-tree-entries 10 "$SERVER" -- sh -c 'case {in} in
		*/a) mkfifo {outdir}/pipe ;;
		*) i=0; while [ $i -lt 11 ]; do : >{outdir}/f$i; i=$((i + 1)); done ;; esac'
	assert_equal "$status" 1
	[[ $stderr == *"failed: bad output tree"* ]]
	wait_server_exit
	assert_equal "$status" 1
	run cat "$SERVER_LOG"
	assert_output --partial "entry 'pipe': a FIFO"
	assert_output --partial "more than 10 entries"
	[[ ! -e $D/in/a.result && ! -e $D/in/b.result ]]
	no_tmp_left
}

@test "trees: a tree job past jq-run's own --max-tree-entries fails, the command never runs" {
	mkdir "$D/big"
	for ((i = 0; i < 20; i++)); do printf '%d' "$i" >"$D/big/f$i"; done
	start_server --fresh --retries 0 "$D/big"
	jr --max-tree-entries 10 "$SERVER" -- sh -c 'touch "$1"' sh "$D/ran" '{in}'
	assert_equal "$status" 1
	[[ $stderr == *"the job's tree is refused: entry 'f18': the tree has more than 10 entries"* ]]
	[[ $stderr == *"failed: tree refused"* ]]
	[[ ! -e $D/ran ]]
	wait_server_exit
	assert_equal "$status" 1
	no_tmp_left
}

# mk_tar KIND FILE: write a hostile tar (KIND: dotdot abs symlink hardlink device bomb many) to
# FILE; $OUTSIDE is the directory nothing may reach
mk_tar() {
	python3 - "$1" "$2" "$OUTSIDE" <<'EOF'
import io, sys, tarfile
kind, path, outside = sys.argv[1:4]
mode = "w:gz" if kind in ("bomb", "many") else "w"
with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as t:
    def reg(name, data=b"evil\n"):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    def link(name, target, kind=tarfile.SYMTYPE):
        i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; t.addfile(i)
    if kind == "dotdot":
        reg("ok"); reg("../../outside/evil")
    elif kind == "abs":
        reg(outside + "/evil")
    elif kind == "symlink":
        link("lnk", outside); reg("lnk/evil")
    elif kind == "hardlink":
        link("passwd", "/etc/passwd", tarfile.LNKTYPE)
    elif kind == "device":
        i = tarfile.TarInfo("null"); i.type = tarfile.CHRTYPE; i.devmajor = 1; i.devminor = 3
        t.addfile(i)
    elif kind == "bomb":
        class Zeros(io.RawIOBase):
            def __init__(self, n): self.n = n
            def readinto(self, b):
                k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
        i = tarfile.TarInfo("zeros"); i.size = 1 << 30; t.addfile(i, Zeros(1 << 30))
    elif kind == "many":
        for n in range(100000):
            reg("d%d/f%d" % (n // 1000, n), b"")
EOF
}

@test "trees: hostile trees PUT by a fake worker are refused (ERR TREE): nothing outside, nothing partial" {
	not_under_valgrind "a 1 GiB bomb and 100 000 entries"
	OUTSIDE=$D/outside
	mkdir "$OUTSIDE" "$D/res"
	local kinds=(dotdot abs symlink hardlink device bomb many) k n
	local -A why=([dotdot]="'..' component" [abs]="absolute path" [symlink]="absolute path"
		[hardlink]="hard link to an absolute path" [device]="a character device"
		[bomb]="the tree size limit" [many]="the tree entries limit")
	for k in "${kinds[@]}"; do
		printf '%s' "$k" >"$D/in/$k"
		mk_tar "$k" "$D/$k.tar"
	done
	start_server --fresh --retries 0 --max-tree-size 16M --max-tree-entries 1000 \
		-o "$D/res" "${kinds[@]/#/$D/in/}"
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
	sendl "$(hello_line 2 name=fake)"
	expect 'OK 2*'
	for k in "${kinds[@]}"; do
		take_token
		n=$(stat -c %s "$D/$k.tar")
		{
			printf 'PUT %s token=%s kind=tree\nDATA %d\n' "$job" "$token" "$n"
			cat "$D/$k.tar"
			printf 'END %d %s\n' "$n" "$(crc32c <"$D/$k.tar")"
		} >&"$conn"
		expect "ERR TREE job $job: the tree is refused: *"
		[[ $line == *"${why[$k]}"* ]] || fail "$k: '$line' does not say '${why[$k]}'"
		[[ $line == *"nothing stored"* ]]
	done
	exec {conn}>&-
	run ls -A "$OUTSIDE"
	assert_output ''
	run ls -A "$D/res"
	assert_output ''
	[[ $(cat /etc/passwd) == "$(cat /etc/passwd)" ]]
}

@test "trees: a tree result replaces an old FILE.result file at once" {
	printf 'x' >"$D/in/r"
	printf 'old\n' >"$D/in/r.result"
	start_server --fresh --redo "$D/in/r"
	jr "$SERVER" -- sh -c 'echo new >{outdir}/fresh'
	assert_success
	wait_server_exit
	run ls -A "$D/in/r.result"
	assert_output fresh
	run ls -A "$D/in"
	assert_output "$(printf 'r\nr.result')"
}

@test "trees: tree results go into --output-archive as NAME/ and NAME/PATH, sorted, checked entry by entry" {
	mkdir -p "$D/in/d/sub" "$D/in/d/empty"
	head -c 200000 /dev/urandom >"$D/in/d/sub/big.bin"
	printf 'one\n' >"$D/in/d/a.txt"
	ln -s sub/big.bin "$D/in/d/link"
	printf 'seed\n' >"$D/in/f"
	start_server --fresh "$D/in/d" "$D/in/f" --output-archive "$D/res.tar"
	jr "$SERVER" -- sh -c 'if [ -d {in} ]; then cp -a {in}/. {outdir}/; else
		mkdir {outdir}/z {outdir}/a; cat {in} >{outdir}/z/1; printf b >{outdir}/a/2; fi'
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	run bsdtar -tf "$D/res.tar"
	assert_success
	assert_equal "$output" "$(printf '%s\n' d.result/ d.result/a.txt d.result/empty/ d.result/link \
		d.result/sub/ d.result/sub/big.bin f.result/ f.result/a/ f.result/a/2 f.result/z/ f.result/z/1)"
	mkdir "$D/x" && bsdtar -xf "$D/res.tar" -C "$D/x"
	run diff -r --no-dereference "$D/in/d" "$D/x/d.result"
	assert_success
	assert_equal "$(readlink "$D/x/d.result/link")" sub/big.bin
	assert_files_equal "$D/x/f.result/z/1" "$D/in/f"
	assert_equal "$(cat "$D/x/f.result/a/2")" b
	# the results kept in the state directory are gone, trees too
	assert_equal "$(find "$JQ_STATE_DIR" -mindepth 1 | grep -c results-)" 0
}

@test "trees: a directory job reruns like make: its tree result is skipped while not older than the input tree's newest entry" {
	mkdir -p "$D/t/sub"
	printf 'a\n' >"$D/t/sub/f"
	printf 'b\n' >"$D/t/g"
	touch -d 2020-01-01 "$D/t/sub/f" "$D/t/g" "$D/t/sub" "$D/t"
	start_server "$D/t"
	jr "$SERVER" -- sh -c 'cp -a {in}/. {outdir}/; echo 1 >{outdir}/run'
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	assert_equal "$(cat "$D/t.result/run")" 1
	# a second run: the result is up to date, nothing served
	touch -d 2021-01-01 "$D/t.result"
	serve_refused 0 "$D/t"
	[[ $stderr == *"the one input already has a result; --redo runs it again"* ]]
	# a file deep inside the input tree newer than the result: it runs again
	touch -d 2022-01-01 "$D/t/sub/f"
	start_server "$D/t"
	jr "$SERVER" -- sh -c 'cp -a {in}/. {outdir}/; echo 2 >{outdir}/run'
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	assert_equal "$(cat "$D/t.result/run")" 2
	# a file removed from a subdirectory dates that directory: it runs again
	touch -d 2023-01-01 "$D/t.result"
	serve_refused 0 "$D/t"
	rm "$D/t/g"
	start_server "$D/t"
	jr "$SERVER" -- sh -c 'cp -a {in}/. {outdir}/; echo 3 >{outdir}/run'
	assert_success
	wait_server_exit
	run ls -A "$D/t.result"
	assert_output "$(printf 'run\nsub')"
	# --redo runs an up-to-date one again; a file result replaces the tree
	touch -d 2030-01-01 "$D/t.result"
	serve_refused 0 "$D/t"
	start_server --redo "$D/t"
	jr "$SERVER" -- tar -tf -
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	[[ -f $D/t.result ]]
	assert_equal "$(sort "$D/t.result")" "$(printf 'sub/\nsub/f')"
	assert_equal "$(find "$D" -maxdepth 1 -name '.jq-*.t*' | wc -l)" 0
	# and a tree result replaces that file (--redo)
	start_server --redo "$D/t"
	jr "$SERVER" -- sh -c 'echo 4 >{outdir}/run'
	assert_success
	wait_server_exit
	assert_equal "$(cat "$D/t.result/run")" 4
}

@test "trees: a directory at a FILE job's result path is still refused at start" {
	printf 'x' >"$D/in/r"
	mkdir "$D/in/r.result"
	serve_refused 2 "$D/in/r"
	[[ $stderr == *"r.result (for $D/in/r) is a directory; a result can replace only a file;"* ]]
}

@test "trees: jq-put --wait for a job whose result is a tree writes the tree as a tar stream to stdout" {
	printf 'seed\n' >"$D/in/a"
	start_server --fresh --keep "$D/in/a"
	jr --max-jobs 1 "$SERVER" -- sh -c 'mkdir {outdir}/s; cat {in} >{outdir}/s/f; ln -s s/f {outdir}/l'
	assert_success
	jq-put --wait "$SERVER" 1 >"$D/got.tar"
	run bsdtar -tf "$D/got.tar"
	assert_success
	assert_output "$(printf 'l\ns/\ns/f')"
	mkdir "$D/x" && bsdtar -xf "$D/got.tar" -C "$D/x"
	run diff -r --no-dereference "$D/in/a.result" "$D/x"
	assert_success
	assert_equal "$(readlink "$D/x/l")" s/f
	# the same tree, the same bytes, every time
	jq-put --wait "$SERVER" 1 | cmp - "$D/got.tar"
	# on the wire: RESULT says kind=tree
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
	sendl "$(hello_line 2 name=waiter)"
	expect 'OK 2*'
	sendl 'WAIT 1'
	expect "RESULT 1 * size=$(stat -c %s "$D/got.tar") kind=tree"
	exec {conn}>&-
	# nothing left in the state directory by the packing
	assert_equal "$(find "$JQ_STATE_DIR" -name '.jq-tree*' | wc -l)" 0
	stop_server
}

@test "trees: an added job's tree result survives kill -9 of the server: done, not 'gone or changed', never run again" {
	local pid
	start_server -v --keep -o "$D/out"
	run -0 jq-put --add --name t "$SERVER" <<<'seed'
	assert_output 1
	jr --max-jobs 1 "$SERVER" -- sh -c 'mkdir {outdir}/s; cat {in} >{outdir}/s/f'
	assert_success
	assert_equal "$(cat "$D/out/t.result/s/f")" "seed"
	pid=$(pgrep -P "$SERVER_PID" -x jq-serve)
	kill -KILL "$pid"
	wait_server_exit 30
	start_server -v --keep -o "$D/out"
	run grep -c "gone or changed" "$SERVER_LOG"
	assert_output 0
	grep -qF '1 done, 0 failed, 0 to run' "$SERVER_LOG"
	run -0 jq-stat --json "$SERVER"
	assert_output --partial '"jobs":{"total":1,"waiting":0,"running":0,"done":1,'
	assert_equal "$(cat "$D/out/t.result/s/f")" "seed"
	stop_server
}

#!/usr/bin/env bats
# tests/archives.bats: jq-serve --archive (each entry of an archive a job, spooled, found again by
# name after a restart) and --output-archive (every result in one archive, written whole, renamed
# into place).  Every archive is made by the test itself; nothing waits on time: a job that must
# stay in the middle waits for a "go" file, and waits are bounded loops.

# shellcheck disable=SC2154 # $stderr, $output and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
	command -v bsdtar >/dev/null || skip "bsdtar (libarchive-tools) is not installed"
	mkdir -p "$D/src/sub/deeper" "$D/out"
	printf 'alpha\n' >"$D/src/a.txt"
	printf 'beta with spaces\n' >"$D/src/sub/b c.txt"
	printf 'dash\n' >"$D/src/-lead"
	printf 'unicode\n' >"$D/src/sub/deeper/ünï.txt"
	head -c 70000 /dev/urandom >"$D/src/sub/bin.dat"
	NAMES=("a.txt" "sub/b c.txt" "-lead" "sub/deeper/ünï.txt" "sub/bin.dat")
}

# safe NAME: an added job's result base name (spool.c): '/' and '%' as %XX, a leading '.' too
safe() {
	local s=${1//%/%25}
	s=${s//\//%2F}
	[[ $s != .* ]] || s=%2E${s#.}
	printf '%s.result' "$s"
}

# serve_pid: jq-serve itself ($SERVER_PID is its watchdog)
serve_pid() {
	pgrep -P "$SERVER_PID" 2>/dev/null | head -n 1
}

# crash_server: kill -9 jq-serve and reap it
crash_server() {
	local pid
	pid=$(serve_pid)
	[[ -n $pid ]] || return 1
	kill -KILL "$pid"
	wait_server_exit 30
}

# BLOCKER: a job command that copies its data, but for the job named $BLOCK first marks
# $M/started and waits (at most a minute) for $M/go
# shellcheck disable=SC2016 # expanded by the job's shell
BLOCKER='if [ "$JQ_JOB_NAME" = "$BLOCK" ]; then echo started >"$M/started"; n=0
	while [ ! -e "$M/go" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done; fi
exec cat'

# blocked_worker: jq-run -j1 running BLOCKER, in a process group of its own (WORKER: its pid and
# the group's id)
blocked_worker() {
	setsid jq-run -j1 --tmpdir "$TMPD" "$SERVER" -- sh -c "$BLOCKER" >"$D/w.log" 2>&1 3>&- &
	WORKER=$!
	JQ_PIDS+=("$WORKER")
}

@test "archives: a zip and a tar.gz of mixed files are served entry by entry; each result is the entry's bytes" {
	(cd "$D/src" && bsdtar -czf "$D/in.tar.gz" . && bsdtar --format zip -cf "$D/in.zip" -- *)
	start_server --archive "$D/in.zip" "$D/in.tar.gz" -o "$D/out"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	local n f
	for n in "${NAMES[@]}"; do
		for f in in.zip in.tar.gz; do
			assert_files_equal "$D/out/$(safe "$f:$n")" "$D/src/$n"
		done
	done
	assert_equal "$(find "$D/out" -type f | wc -l)" 10
	# the spool and the journal are gone with a complete run
	assert_equal "$(find "$JQ_STATE_DIR" -type f | wc -l)" 0
}

@test "archives: --output-archive holds every result once, named like its result file, checked entry by entry" {
	(cd "$D/src" && bsdtar -cf "$D/in.tar" -- *)
	start_server --archive "$D/in.tar" --output-archive "$D/res.tar.zst"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	local want n
	want=$(for n in "${NAMES[@]}"; do safe "$n"; echo; done | LC_ALL=C sort)
	run bsdtar -tf "$D/res.tar.zst"
	assert_success
	assert_equal "$(LC_ALL=C sort <<<"$output")" "$want"
	mkdir "$D/x" && bsdtar -xf "$D/res.tar.zst" -C "$D/x"
	for n in "${NAMES[@]}"; do
		assert_files_equal "$D/x/$(safe "$n")" "$D/src/$n"
	done
	# results kept in the state directory are gone once the archive is in place
	assert_equal "$(find "$JQ_STATE_DIR" -type f | wc -l)" 0
	assert_equal "$(find "$D" -maxdepth 1 -name '.*jq-partial' | wc -l)" 0
}

# wait_size FILE BYTES: wait until FILE holds at least BYTES
wait_size() {
	local i
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		[[ -f $1 && $(stat -c %s "$1") -ge $2 ]] && return 0
		sleep 0.05
	done
	fail "$1 never reached $2 bytes"
}

@test "archives: results go into the output archive while later jobs still run, in job order; the partial archive is never at the target" {
	local i
	for i in 1 2 3 4 5; do head -c 400000 /dev/urandom >"$D/src/e$i"; done
	printf 'entry 6\n' >"$D/src/e6"
	(cd "$D/src" && bsdtar -cf "$D/in.tar" e1 e2 e3 e4 e5 e6)
	start_server --archive "$D/in.tar" --output-archive "$D/res.tar"
	export BLOCK=e6
	blocked_worker
	wait_for_file "$M/started"
	# five results done, the sixth running: they are in the temporary archive already
	wait_size "$D/.res.tar.jq-partial" 1048576
	assert_file_not_exist "$D/res.tar"
	: >"$M/go"
	wait_server_exit 60
	assert_equal "$status" 0
	run bsdtar -tf "$D/res.tar"
	assert_output "$(printf 'e%d.result\n' 1 2 3 4 5 6)"
	mkdir "$D/x" && bsdtar -xf "$D/res.tar" -C "$D/x"
	for i in 1 2 3 4 5 6; do
		assert_files_equal "$D/x/e$i.result" "$D/src/e$i"
	done
	assert_file_not_exist "$D/.res.tar.jq-partial"
}

@test "archives: the output archive is in job order when the first job finishes last" {
	local i n
	for i in 1 2 3 4 5 6; do printf 'entry %d\n' "$i" >"$D/src/e$i"; done
	(cd "$D/src" && bsdtar -czf "$D/in.tgz" e1 e2 e3 e4 e5 e6)
	start_server --archive "$D/in.tgz" --output-archive "$D/res.tar.gz"
	export BLOCK=e1
	blocked_worker
	wait_for_file "$M/started"
	jq-run -j1 "$SERVER" -- cat >"$D/w2.log" 2>&1 3>&- &
	JQ_PIDS+=("$!")
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		n=$(find "$JQ_STATE_DIR" -name 'e*.result' | wc -l)
		((n < 5)) || break
		sleep 0.05
	done
	assert_equal "$n" 5
	: >"$M/go"
	wait_server_exit 60
	assert_equal "$status" 0
	run bsdtar -tf "$D/res.tar.gz"
	assert_output "$(printf 'e%d.result\n' 1 2 3 4 5 6)"
	for i in 1 2 3 4 5 6; do
		assert_equal "$(bsdtar -xOf "$D/res.tar.gz" "e$i.result")" "entry $i"
	done
}

@test "archives: --output-archive .zip of FILE jobs; an unknown extension is refused at start" {
	start_server "$D/src/a.txt" "$D/src/-lead" --output-archive "$D/res.zip"
	run jq-run -j1 "$SERVER" -- tr a-z A-Z
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(bsdtar -xOf "$D/res.zip" a.txt.result)" ALPHA
	assert_equal "$(bsdtar -xOf "$D/res.zip" -- -lead.result)" DASH
	serve_refused 2 "$D/src/a.txt" --output-archive "$D/res.rar"
	assert_equal "$stderr" "$(printf '%s\n%s' "jq-serve: --output-archive $D/res.rar: no known extension: name it .tar, .tar.gz (.tgz), .tar.zst (.tzst), .tar.xz (.txz), .tar.bz2 (.tbz2), .tar.lz4 or .zip" "jq-serve: Try 'jq-serve --help' for more information.")"
	serve_refused 2 --archive "$D/src/a.txt"
	[[ $stderr == *"-o DIR or --output-archive FILE"* ]]
}

@test "archives: a server with --output-archive killed -9 mid-run and restarted ends with a complete archive, every result once" {
	local i n
	for i in 1 2 3 4 5 6; do printf 'entry %d\n' "$i" >"$D/src/e$i"; done
	(cd "$D/src" && bsdtar -czf "$D/in.tgz" e1 e2 e3 e4 e5 e6)
	start_server --archive "$D/in.tgz" --output-archive "$D/res.tar.gz"
	export BLOCK=e4
	blocked_worker
	wait_for_file "$M/started"
	crash_server
	# never a partial archive at the target
	assert_file_not_exist "$D/res.tar.gz"
	: >"$M/go"
	start_server --archive "$D/in.tgz" --output-archive "$D/res.tar.gz"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	run bsdtar -tf "$D/res.tar.gz"
	assert_output "$(printf 'e%d.result\n' 1 2 3 4 5 6)"
	for i in 1 2 3 4 5 6; do
		assert_equal "$(bsdtar -xOf "$D/res.tar.gz" "e$i.result")" "entry $i"
	done
	assert_file_not_exist "$D/.res.tar.gz.jq-partial"
}

@test "archives: a second server started while the first ends its --output-archive run is refused; the archive stays whole; a rerun after the end writes it whole again" {
	command -v strace >/dev/null || skip "strace is not installed"
	local i n st pid
	n=40
	for ((i = 1; i <= n; i++)); do printf 'entry %d\n' "$i" >"$D/src/e$i"; done
	(cd "$D/src" && bsdtar -cf "$D/in.tar" e*)
	# the first server is held (SIGSTOP) at its first rmdir: its end work, after the archive's
	# rename, while the results kept in the state directory are still to be removed
	mkdir "$D/bin"
	# strace logs the group stop: /proc's state alone cannot tell it from a tracing stop
	printf '#!/bin/sh\nexec strace -f -o %s -e trace=rmdir -e inject=rmdir:signal=SIGSTOP:when=1 %s "$@"\n' \
		"$D/strace.log" "$(command -v jq-serve)" >"$D/bin/jq-serve"
	chmod +x "$D/bin/jq-serve"
	PATH=$D/bin:$PATH start_server -vv --archive "$D/in.tar" --output-archive "$D/res.tar"
	st=$(serve_pid)
	pid=$(pgrep -P "$st" | head -n 1)
	[[ -n $pid ]] || fail "no jq-serve under strace"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	# the archive is written first, then the server stops at its first rmdir
	wait_log "$D/res.tar: $n results"
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		grep -q -- '--- stopped by SIGSTOP ---' "$D/strace.log" && break
		sleep 0.05
	done
	grep -q -- '--- stopped by SIGSTOP ---' "$D/strace.log" || fail "the first server never reached its end work"
	# the second server, at that moment: refused, nothing of the first touched
	serve_refused 8 --archive "$D/in.tar" --output-archive "$D/res.tar"
	[[ $stderr == *"another jq-serve is serving this list"* ]] || fail "not refused as documented: $stderr"
	kill -CONT "$pid"
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(bsdtar -tf "$D/res.tar" | wc -l)" "$n"
	assert_equal "$(bsdtar -xOf "$D/res.tar" e7.result)" "entry 7"
	assert_equal "$(find "$JQ_STATE_DIR" -type f 2>/dev/null | wc -l)" 0
	# the run over, the same command is a new run: every job again, the archive whole again
	start_server --archive "$D/in.tar" --output-archive "$D/res.tar"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	grep -qF "$D/res.tar: $n results" "$SERVER_LOG" || fail "the rerun did not write every result"
	assert_equal "$(bsdtar -tf "$D/res.tar" | wc -l)" "$n"
	assert_equal "$(bsdtar -xOf "$D/res.tar" e7.result)" "entry 7"
}

@test "archives: entries' spool files lost or damaged in a crash are read again from the archive; the archive ends complete" {
	local i sp
	for i in 1 2 3 4 5 6; do printf 'entry %d\n' "$i" >"$D/src/e$i"; done
	(cd "$D/src" && bsdtar --zstd -cf "$D/in.tar.zst" e1 e2 e3 e4 e5 e6)
	start_server -v --archive "$D/in.tar.zst" --output-archive "$D/res.tar.zst"
	export BLOCK=e4
	blocked_worker
	wait_for_file "$M/started"
	wait_log "archive $D/in.tar.zst: 6 entries read"
	crash_server
	kill -KILL -- "-$WORKER"
	# what a crash of the machine can do to data that was never fdatasync'd
	sp=("$JQ_STATE_DIR"/spool-*)
	assert_file_exist "${sp[0]}/4"
	rm "${sp[0]}/4"
	: >"${sp[0]}/5"
	printf 'ENTRY 6\n' >"${sp[0]}/6"	# the same size, other bytes
	: >"$M/go"
	start_server -v --archive "$D/in.tar.zst" --output-archive "$D/res.tar.zst"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	for i in 4 5 6; do
		grep -qF "job $i e$i: its data, lost in a crash, read again from archive" "$SERVER_LOG" ||
			fail "job $i was not read again from the archive"
	done
	grep -qF "its data ${sp[0]}/6 is damaged" "$SERVER_LOG" || fail "the damage to job 6 went unseen"
	run bsdtar -tf "$D/res.tar.zst"
	assert_output "$(printf 'e%d.result\n' 1 2 3 4 5 6)"
	for i in 1 2 3 4 5 6; do
		assert_equal "$(bsdtar -xOf "$D/res.tar.zst" "e$i.result")" "entry $i"
	done
}

@test "archives: entries' journal records lost in a crash (never synced alone) are read again from the archive; the archive ends complete" {
	local i sp jl j
	for i in 1 2 3 4 5 6; do printf 'entry %d\n' "$i" >"$D/src/e$i"; done
	(cd "$D/src" && bsdtar -czf "$D/in.tgz" e1 e2 e3 e4 e5 e6)
	start_server -v --archive "$D/in.tgz" --output-archive "$D/res.tar.gz"
	wait_log "archive $D/in.tgz: 6 entries read"
	crash_server
	# a crash of the machine keeps a prefix of the journal: here A 1 and A 2
	jl=("$JQ_STATE_DIR"/journal-*)
	j=${jl[0]%.archives}
	sp=("$JQ_STATE_DIR"/spool-*)
	assert_equal "$(grep -c '^A ' "$j")" 6
	head -n 2 "$j" >"$D/j2" && cat "$D/j2" >"$j"
	rm "${sp[0]}/5" "${sp[0]}/6"
	start_server -v --archive "$D/in.tgz" --output-archive "$D/res.tar.gz"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	grep -qF "removed ${sp[0]}/3, an add that was never journaled" "$SERVER_LOG" ||
		fail "the unjournaled spool file 3 was not removed"
	run bsdtar -tf "$D/res.tar.gz"
	assert_output "$(printf 'e%d.result\n' 1 2 3 4 5 6)"
	for i in 1 2 3 4 5 6; do
		assert_equal "$(bsdtar -xOf "$D/res.tar.gz" "e$i.result")" "entry $i"
	done
}

@test "archives: a lost job is served again from its spool, without reading the archive again" {
	(cd "$D/src" && bsdtar -cJf "$D/in.tar.xz" a.txt sub)
	start_server -v --archive "$D/in.tar.xz" -o "$D/out" --lease 1s
	export BLOCK=a.txt
	blocked_worker
	wait_for_file "$M/started"
	wait_log "archive $D/in.tar.xz: 4 entries read"
	# the archive is read through: gone, it cannot be read again
	rm "$D/in.tar.xz"
	kill -KILL -- "-$WORKER"
	: >"$M/go"
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	assert_files_equal "$D/out/a.txt.result" "$D/src/a.txt"
	assert_files_equal "$D/out/sub%2Fbin.dat.result" "$D/src/sub/bin.dat"
	assert_equal "$(grep -c 'in.tar.xz: reading' "$SERVER_LOG")" 1
}

@test "archives: hostile entry names (../x, /abs, a/../../y) are refused, saying so; nothing is written outside" {
	python3 - "$D/evil.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    for name in ("../x", "/abs", "a/../../y", "ok.txt"):
        data = ("data of %s\n" % name).encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
EOF
	start_server --archive "$D/evil.tar" -o "$D/out/r"
	run jq-run -j1 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 1
	run cat "$SERVER_LOG"
	assert_output --partial "entry ../x refused: its path has a \"..\" component"
	assert_output --partial "entry /abs refused: its path is absolute"
	assert_output --partial "entry a/../../y refused: its path has a \"..\" component"
	assert_equal "$(ls "$D/out/r")" "ok.txt.result"
	assert_file_not_exist "$D/out/x"
	assert_file_not_exist "$D/x"
	assert_file_not_exist /abs
	assert_file_not_exist "$D/out/y"
}

@test "archives: a restart with a changed archive is refused, never storing results under the old names; --fresh starts over" {
	local i
	for i in 1 2 3; do printf 'old %d\n' "$i" >"$D/src/e$i"; done
	(cd "$D/src" && bsdtar -cf "$D/in.tar" e1 e2 e3)
	start_server --archive "$D/in.tar" -o "$D/out"
	export BLOCK=e2
	blocked_worker
	wait_for_file "$M/started"
	crash_server
	: >"$M/go"
	# same names, other contents
	for i in 1 2 3; do printf 'new %d\n' "$i" >"$D/src/e$i"; done
	(cd "$D/src" && bsdtar -cf "$D/in.tar" e3 e2 e1)
	serve_refused 2 --archive "$D/in.tar" -o "$D/out"
	[[ $stderr == *"an archive changed since the interrupted run"*"--fresh starts over"* ]]
	start_server --archive "$D/in.tar" -o "$D/out" --fresh
	run jq-run -j2 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	for i in 1 2 3; do
		assert_equal "$(cat "$D/out/e$i.result")" "new $i"
	done
}

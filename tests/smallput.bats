#!/usr/bin/env bats
# tests/smallput.bats: one sync on the way to a small result's OK (issues 11 and 14).
#
# With jq-serve --early-ok, a result of at most 64 KiB travels inside its journal record (I): the worker is told OK once
# that record is synced, and the file is synced, renamed and its directory synced after.  The
# strace test checks that order; the kill tests stop the server (the JQ_TEST_COMMIT_KILL seam)
# after the I record is synced but before the OK, after the temporary file is synced but before
# its rename, and after the rename but before the D record; every restart must end with every
# result in place, byte for byte, no temporary file left, and no job run twice.  No timing: the
# seam kills at a fixed step, and waits are bounded loops.

# shellcheck disable=SC2154 # $stderr, $output and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
	mkdir -p "$D/out"
}

teardown() {
	jq_teardown
}

# journal_text: the record lines of the journal(s) (the raw bytes of I records are in between)
journal_text() {
	local j
	for j in "$JQ_STATE_DIR"/journal-*; do
		[[ $j == *.new || ! -f $j ]] || cat -v "$j"
	done
}

# run_worker: jq-run -j 1 until the server is gone or done; each job's name goes to $RUNS
run_worker() {
	run timeout -k 5 120 env RUNS="$RUNS" jq-run -j 1 --tmpdir "$TMPD" "$SERVER" -- \
		sh -c 'echo "$JQ_JOB_NAME" >>"$RUNS"; tr a-z A-Z'
}

# recorded: the names of the jobs the journal holds as done (an I or a D record), one a line
recorded() {
	journal_text | sed -n -e 's/^D [0-9]* [0-9]* \([^ ]*\) [0-9a-f]\{8\}$/\1/p' \
		-e 's/^I [0-9]* [0-9]* [0-9a-f]\{8\} \([^ ]*\) [0-9a-f]\{8\}$/\1/p' | sort -u
}

# crash_at STEP: kill -9 the server at the first STEP of the seam, restart it, finish the run;
# then every result is right, no temporary file is left, and no job the journal held as done
# at the crash ran again (jq-run takes the next job ahead: that one may run twice, not more)
crash_at() {
	local f n=4
	make_files "$D/in" $n
	export RUNS=$D/runs.log
	: >"$RUNS"
	JQ_TEST_COMMIT_KILL=$1:1 start_server --early-ok -v -o "$D/out" "$D"/in/*.dat
	run_worker	# it loses the server
	wait_server_exit 60
	assert_equal "$status" 137
	recorded >"$D/rec"
	grep -qx "$D/in/file0001.dat" "$D/rec" || fail "job 1 is not in the journal: $(journal_text)"
	local before
	before=$(wc -l <"$RUNS")
	start_server --early-ok -v -o "$D/out" "$D"/in/*.dat
	grep -q "resuming from .*: $(wc -l <"$D/rec") done" "$SERVER_LOG" ||
		fail "the jobs in the journal are not done at the restart: $(cat "$SERVER_LOG")"
	run_worker
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	for f in "$D"/in/*.dat; do
		assert_equal "$(cat "$D/out/${f##*/}.result")" "$(tr a-z A-Z <"$f")"
	done
	assert_equal "$(find "$D/out" -type f | wc -l)" $n
	run find "$D/out" "$D/in" -name '.jq-*'
	assert_output ""
	# no job done at the crash ran after it; none ran more than twice
	run comm -12 "$D/rec" <(tail -n +$((before + 1)) "$RUNS" | sort -u)
	assert_output ""
	run awk 'n[$0]++ == 2 { print "ran three times: " $0 }' "$RUNS"
	assert_output ""
	assert_equal "$(sort -u "$RUNS" | wc -l)" $n
}

@test "smallput: kill -9 after the I record is synced, before the OK: the restart writes the result from the journal" {
	crash_at synced
	grep -q 'file0001.dat.result written again from the journal' "$JQ_TMP/server2.log"
}

@test "smallput: kill -9 after the temporary file is synced, before its rename: the restart writes the result from the journal" {
	crash_at file
	grep -q 'file0001.dat.result written again from the journal' "$JQ_TMP/server2.log"
}

@test "smallput: kill -9 after the rename, before the D record: the result in place is kept as it is" {
	crash_at renamed
	# job 1 was in the first batch put in place (later ones, acknowledged meanwhile, may not be)
	run grep 'file0001.dat.result written again from the journal' "$JQ_TMP/server2.log"
	assert_failure
}

@test "smallput: a result in place with other bytes than its I record's is written again at the restart" {
	make_files "$D/in" 2
	export RUNS=$D/runs.log
	: >"$RUNS"
	JQ_TEST_COMMIT_KILL=renamed:1 start_server --early-ok -v -o "$D/out" "$D"/in/*.dat
	run_worker
	wait_server_exit 60
	assert_equal "$status" 137
	# damage it, same size
	tr A-Z a-z <"$D/out/file0001.dat.result" >"$D/damaged"
	cat "$D/damaged" >"$D/out/file0001.dat.result"
	start_server --early-ok -v -o "$D/out" "$D"/in/*.dat
	grep -q 'file0001.dat.result written again from the journal' "$SERVER_LOG"
	run_worker
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/file0001.dat.result")" "$(tr a-z A-Z <"$D/in/file0001.dat")"
}

@test "smallput: a result past 64 KiB takes the old road (D record, no I); a small one travels in its I record" {
	head -c 70000 /dev/zero | tr '\0' 'x' >"$D/in/big.txt"
	printf 'small\n' >"$D/in/small.txt"
	start_server --early-ok --keep -v -o "$D/out" "$D/in/big.txt" "$D/in/small.txt"
	run timeout -k 5 120 jq-run -j 1 --max-jobs 2 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	assert_success
	cmp "$D/out/big.txt.result" <(head -c 70000 /dev/zero | tr '\0' 'X')
	assert_equal "$(cat "$D/out/small.txt.result")" "SMALL"
	# job 1 (big): a D record only; job 2 (small): its I record with its 6 bytes, then a D record
	journal_text | grep -q '^D 1 70000 ' || fail "no D record for the big result: $(journal_text | head -c 600)"
	run bash -c 'grep -c "^I 1 " <<<"$1"' _ "$(journal_text)"
	assert_output 0
	journal_text | grep -q '^I 2 6 [0-9a-f]\{8\} ' || fail "no I record for the small result: $(journal_text | head -c 600)"
	journal_text | grep -q '^D 2 6 ' || fail "no D record after the small result was put in place"
	stop_server
}

@test "smallput: strace: the I record is synced, then OK; the file is synced, renamed, its directory synced, then its D record" {
	command -v strace >/dev/null || skip "strace is missing (apt-get install strace)"
	make_files "$D/in" 2
	local real log=$D/strace.log
	real=$(command -v jq-serve)
	mkdir -p "$D/bin"
	# (LeakSanitizer cannot run under ptrace: off for this one process in make ASAN=1 check)
	cat >"$D/bin/jq-serve" <<EOF
#!/bin/sh
ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
exec strace -f -s 200 -o '$log' \
	-e trace=openat,fdatasync,fsync,rename,renameat,renameat2,write,sendto,sendmsg,writev \
	'$real' "\$@"
EOF
	chmod +x "$D/bin/jq-serve"
	PATH=$D/bin:$PATH start_server --early-ok -o "$D/out" "$D"/in/*.dat
	run timeout -k 5 120 jq-run -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_success
	wait_server_exit 30
	assert_equal "$status" 0
	cmp "$D/in/file0002.dat" "$D/out/file0002.dat.result"
	# the server's threads interleave: a call strace split ("<unfinished ...>" ... "<... resumed>")
	# is joined into one line, placed where it returned
	awk '/ <unfinished \.\.\.>$/ { p = $1; sub(/ <unfinished \.\.\.>$/, ""); pend[p] = $0; next }
	/^[0-9]+ +<\.\.\. [a-z0-9_]+ resumed>/ && ($1 in pend) {
		r = $0; sub(/^[0-9]+ +<\.\.\. [a-z0-9_]+ resumed>/, "", r); print pend[$1] r; delete pend[$1]; next }
	{ print }' "$log" >"$log.joined"
	# line numbers of each step for job 2, in the order they must come
	run awk '
	function fd(s) { sub(/^[^(]*\(/, "", s); sub(/[,)].*$/, "", s); return s }
	function path(s) { if (!match(s, /"[^"]*"/)) return ""; return substr(s, RSTART, RLENGTH) }
	/openat\(/ && / = [0-9]+$/ { fpath[$NF] = path($0) }
	/openat\(.*journal-/ && / = [0-9]+$/ { jfd = $NF }
	/openat\(.*\.jq-[0-9]+-[0-9]+\.tmp/ && / = [0-9]+$/ {
		match($0, /\.jq-[0-9]+-[0-9]+\.tmp/); tfd[substr($0, RSTART, RLENGTH)] = $NF; tline[$NF] = NR }
	/^[0-9]+ +fdatasync\(/ { f = fd($2); last_sync[f] = NR; if (f == jfd && irec && !jsync) jsync = NR }
	/^[0-9]+ +write\(/ && index($0, "\"I 2 ") && fd($2) == jfd { irec = NR }
	/rename(at2?)?\(.*file0002\.dat\.result/ && / = 0$/ {
		match($0, /\.jq-[0-9]+-[0-9]+\.tmp/); t = tfd[substr($0, RSTART, RLENGTH)]
		tsync = (t != "" && last_sync[t] > tline[t]) ? last_sync[t] : 0
		ren = NR; dpath = fpath[fd($2)] }
	# one directory sync serves every result renamed into it before it (by any descriptor)
	/^[0-9]+ +fsync\(/ && ren && !dsync && fpath[fd($2)] == dpath { dsync = NR }
	/^[0-9]+ +write\(/ && index($0, "\"D 2 ") && fd($2) == jfd { drec = NR }
	/(write|writev|sendmsg|sendto)\(/ && index($0, "OK 2\\n") && !ok { ok = NR }
	END { printf "record %d recsync %d ok %d datasync %d rename %d dirsync %d done %d\n",
		irec, jsync, ok, tsync, ren, dsync, drec
		# the OK waits for the journal sync alone: the file is synced after that sync
		if (irec && irec < jsync && jsync < ok && jsync < tsync && tsync < ren && ren < dsync &&
		    dsync < drec)
			print "in order" }' "$log.joined"
	sed 's/^/# /' <<<"$output" >&3
	assert_line "in order"
}

@test "smallput: an I record torn in its bytes (a crash mid-append) is cut off at the restart, and its job runs again" {
	make_files "$D/in" 1
	export RUNS=$D/runs.log
	: >"$RUNS"
	JQ_TEST_COMMIT_KILL=synced:1 start_server --early-ok -v -o "$D/out" "$D"/in/*.dat
	run_worker
	wait_server_exit 60
	assert_equal "$status" 137
	local j
	j=$(ls "$JQ_STATE_DIR"/journal-*)
	journal_text | grep -q '^I 1 ' || fail "no I record: $(journal_text)"
	# cut the record inside its bytes (the LF after them and two bytes of data)
	truncate -s -3 "$j"
	start_server --early-ok -v -o "$D/out" "$D"/in/*.dat
	grep -q 'dropped a torn last record' "$SERVER_LOG" || fail "the torn record was not dropped: $(cat "$SERVER_LOG")"
	run_worker
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/file0001.dat.result")" "$(tr a-z A-Z <"$D/in/file0001.dat")"
	assert_equal "$(wc -l <"$RUNS")" 2
	run find "$D/out" "$D/in" -name '.jq-*'
	assert_output ""
}

@test "smallput: without --early-ok a small result takes the old road: file in place and D record before the OK, no I record" {
	printf 'small\n' >"$D/in/small.txt"
	start_server --keep -v -o "$D/out" "$D/in/small.txt"
	run timeout -k 5 120 jq-run -j 1 --max-jobs 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	assert_success
	# in place when jq-run returns: its OK came after the file was
	assert_equal "$(cat "$D/out/small.txt.result")" "SMALL"
	journal_text | grep -q '^D 1 6 ' || fail "no D record: $(journal_text)"
	run bash -c 'grep -c "^I " <<<"$1"' _ "$(journal_text)"
	assert_output 0
	stop_server
}

@test "smallput: a result answered OK that then cannot be put in place is not lost: exit 8, journal kept, the next start places it" {
	command -v strace >/dev/null || skip "strace is not installed"
	mkdir -p "$D/bin" "$D/one"
	# the first renameat fails: the flush's, after the OK (the address file is written with rename)
	printf '#!/bin/sh\nexec strace -f -o /dev/null -e trace=renameat -e inject=renameat:error=EACCES:when=1 %s "$@"\n' \
		"$(command -v jq-serve)" >"$D/bin/jq-serve"
	chmod +x "$D/bin/jq-serve"
	printf 'x\n' >"$D/one/a"
	PATH=$D/bin:$PATH start_server --early-ok -o "$D/out" "$D/one/a"
	local id
	id=$(jq-take -o "$D/got" "$SERVER")
	printf 'result bytes\n' >"$D/res"
	run -0 jq-put "$SERVER" "$id" "$D/res"
	wait_server_exit 60
	assert_equal "$status" 8
	run cat "$SERVER_LOG"
	assert_output --partial 'cannot be put in place: a.result: rename: Permission denied'
	assert_output --partial '1 acknowledged result could not be put in place; the journal keeps it: run again to place it'
	assert_file_not_exist "$D/out/a.result"
	assert_equal "$(find "$D/out" -name '.jq-*' | wc -l)" 0
	# the same command again, without the fault: the result from the journal, no job run
	start_server --early-ok -o "$D/out" "$D/one/a"
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/a.result")" 'result bytes'
}

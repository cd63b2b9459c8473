#!/usr/bin/env bats
# tests/run.bats: jq-run, the worker that runs a command per job (issue 3).
#
# Every test runs its own jq-serve and gives jq-run a --tmpdir inside the test's directory, so
# "no temporary directory left" is checked by looking at that directory.  Nothing here depends on
# timing: where a test must act while jobs run, the command leaves a marker file and waits for
# one, and the test waits for the marker (wait_for_file) or for a line jq-run logs with -v.

# shellcheck disable=SC2154 # $stderr, $output and $status are set by bats' run

setup() {
	load test_helper/common
	jq_setup root sock worker
}

# serve ARG...: start_server for a fresh run that serves every file (a test may serve the same
# files twice, their results then up to date)
serve() {
	start_server --fresh --redo "$@"
}

# jr ARG...: run jq-run with the test's --tmpdir (stdout and stderr apart)
jr() {
	run --separate-stderr timeout -k 5 120 jq-run --tmpdir "$TMPD" "$@"
}

# jr_bg OUTFILE ARG...: start jq-run in the background (its own pid in $JR_PID, so that signals
# reach jq-run itself and not a wrapper); stdout in OUTFILE, stderr in OUTFILE.err
jr_bg() {
	local out=$1
	shift
	jq-run --tmpdir "$TMPD" "$@" >"$out" 2>"$out.err" 3>&- &
	JR_PID=$!
	JQ_PIDS+=("$JR_PID")
}

# assert_tmp_empty: jq-run removed every job directory
assert_tmp_empty() {
	local left
	left=$(ls -A "$TMPD")
	assert_equal "$left" ""
}

# assert_dead PID: the process is gone (or a zombie waiting for its new parent to reap it)
assert_dead() {
	local st=
	if kill -0 "$1" 2>/dev/null; then
		read -r st <"/proc/$1/stat" 2>/dev/null || st=
		st=${st##*) }
		[[ -z $st || ${st%% *} == Z ]] || fail "process $1 is still running"
	fi
}

# wait_stat KEY N: wait until jq-stat counts N jobs as KEY (the server notices a closed
# connection a moment after jq-run exits), then check it
wait_stat() {
	local i json
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		json=$(jq-stat -j "$SERVER")
		[[ $(json_field "$json" "$1") == "$2" ]] && return 0
		sleep 0.05
	done
	fail "jq-stat: $1 is not $2: $json"
}

# stat_json: jq-stat -j of the test's server
stat_json() {
	jq-stat -j "$SERVER"
}

# json_field JSON KEY: the number after "KEY": in JSON
json_field() {
	local re="\"$2\":([0-9]+)"
	[[ $1 =~ $re ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

@test "jq-run: tr a-z A-Z streams each job through stdin and stdout byte for byte" {
	make_files "$D/in" 5 txt
	serve "$D"/in/*.txt
	jr "$SERVER" -- tr a-z A-Z
	assert_success
	for f in "$D"/in/*.txt; do
		assert_equal "$(tr a-z A-Z <"$f" | od -c)" "$(od -c <"$f.result")"
	done
	wait_server_exit
	assert_equal "$status" 0
	assert_tmp_empty
}

@test "jq-run: sha256sum of binary jobs; cat of a 5 MiB job both ways at once" {
	head -c 5000000 /dev/urandom >"$D/in/big.bin"
	head -c 40000 /dev/urandom >"$D/in/mid.bin"
	: >"$D/in/empty.bin"
	serve -r '{name}.sha' "$D"/in/*.bin
	jr -j 2 "$SERVER" -- sha256sum
	assert_success
	for f in "$D"/in/*.bin; do
		assert_equal "$(<"$f.sha")" "$(sha256sum <"$f")"
	done
	wait_server_exit
	serve "$D"/in/*.bin
	jr -j 3 "$SERVER" -- cat
	assert_success
	for f in "$D"/in/*.bin; do
		cmp "$f" "$f.result"
	done
	assert_tmp_empty
}

@test "jq-run: <in> and <out> with cp, and the {in} {out} spellings" {
	make_files "$D/in" 3 dat
	head -c 300000 /dev/urandom >"$D/in/big.dat"
	serve "$D"/in/*.dat
	jr -j 2 "$SERVER" -- cp '<in>' '<out>'
	assert_success
	for f in "$D"/in/*.dat; do cmp "$f" "$f.result"; done
	wait_server_exit
	rm "$D"/in/*.result
	serve "$D"/in/*.dat
	# unquoted on purpose: the brace spelling survives a shell as is
	# shellcheck disable=SC1083
	jr "$SERVER" -- cp {in} {out}
	assert_success
	for f in "$D"/in/*.dat; do cmp "$f" "$f.result"; done
	assert_tmp_empty
}

@test "jq-run: <in> keeps the job's base name, <out.EXT> ends in .EXT, both absolute" {
	printf 'x' >"$D/in/A.wav"
	serve "$D/in/A.wav"
	# shellcheck disable=SC2016 # $1 and $2 are for the inner sh
	jr "$SERVER" -- sh -c 'printf "%s %s\n" "$1" "$2"; : >"$2"' sh '<in>' '{out.mp3}'
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	[[ ! -s $D/in/A.wav.result ]]
	# the paths went to stdout, which with <out> is jq-run's, prefixed with the job's name
	[[ $output =~ ^$D/in/A\.wav:\ (/[^ ]*)/in/A\.wav\ (/[^ ]*)/out/A\.mp3$ ]]
	assert_equal "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	[[ ${BASH_REMATCH[1]} == "$TMPD"/* ]]
	assert_tmp_empty
}

@test "jq-run: <name> <id>, literal <<in> and {{in}, and the JQ_* environment" {
	printf 'x' >"$D/in/j.txt"
	serve "$D/in/j.txt"
	# shellcheck disable=SC2016 # for the inner sh
	jr -j 1 --worker w1 "$SERVER" -- sh -c 'printf "%s|" "$@" "$JQ_JOB_ID" "$JQ_JOB_NAME" "$JQ_ATTEMPT" "$JQ_WORKER" "$JQ_SERVER"; printf "%s" "$TMPDIR" >"$M/tmpdir"' sh '<name>' '{id}' '<<in>' '{{in}' 'a < b' '{print}'
	assert_success
	assert_equal "$(<"$D/in/j.txt.result")" "$D/in/j.txt|1|<in>|{in}|a < b|{print}|1|$D/in/j.txt|1|w1|$SERVER|"
	# the command's TMPDIR is its job directory, removed afterwards
	[[ $(<"$M/tmpdir") == "$TMPD"/jq-run.* ]]
	[[ ! -e $(<"$M/tmpdir") ]]
	assert_tmp_empty
}

@test "jq-run: the command gets fds 0-2 only, no blocked or ignored signal, its own group" {
	printf 'x' >"$D/in/c.txt"
	serve "$D/in/c.txt"
	# the probe opens nothing itself, so what it lists is what jq-run gave it
	jr -j 1 "$SERVER" -- "$BUILDDIR/fdprobe"
	assert_success
	assert_equal "$(<"$D/in/c.txt.result")" "0 1 2 SigBlk:	0000000000000000
SigIgn:	0000000000000000
own group"
}

@test "jq-run: commands that never read stdin (true, sleep 1, head -c 10) neither hang nor fail" {
	head -c 3000000 /dev/urandom >"$D/in/big.bin"
	printf 'small' >"$D/in/small.bin"
	serve "$D"/in/*.bin
	jr -j 2 "$SERVER" -- true
	assert_success
	[[ -e $D/in/big.bin.result && ! -s $D/in/big.bin.result ]]
	wait_server_exit
	assert_equal "$status" 0
	serve "$D/in/big.bin"
	jr "$SERVER" -- sleep 1
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	serve "$D/in/big.bin"
	jr "$SERVER" -- head -c 10
	assert_success
	cmp <(head -c 10 "$D/in/big.bin") "$D/in/big.bin.result"
	assert_tmp_empty
}

@test "jq-run: a lot of stderr and stdout at once does not deadlock" {
	head -c 2000000 /dev/urandom >"$D/in/big.bin"
	serve "$D/in/big.bin"
	# shellcheck disable=SC2016
	jr "$SERVER" -- sh -c 'head -c 3000000 /dev/zero | tr "\0" x | fold -w 100 >&2; cat'
	assert_success
	cmp "$D/in/big.bin" "$D/in/big.bin.result"
	assert_tmp_empty
}

@test "jq-run: a failing command: exit status and stderr tail reach jq-stat, stderr is prefixed" {
	printf 'a' >"$D/in/bad.txt"
	printf 'b' >"$D/in/keep.other"
	serve "$D/in/bad.txt" "$D/in/keep.other"
	# shellcheck disable=SC2016
	jr --match '*.txt' "$SERVER" -- sh -c 'cat >/dev/null; seq 1 2000 >&2; echo "it broke" >&2; echo partial; exit 3'
	assert_failure 1
	[[ $stderr == *"$D/in/bad.txt: it broke"* ]]
	[[ $stderr == *"$D/in/bad.txt: 1999"* ]]
	run jq-stat "$SERVER"
	assert_success
	assert_line --partial "1 failed"
	assert_line --regexp "^  1  .*bad\.txt  exit 3: .*it broke"
	run stat_json
	[[ $output == *'"status":"exit 3"'* ]]
	# the message is the tail: the last lines are there, the first are not
	[[ $output == *'2000\nit broke\n'* ]]
	[[ $output != *'"message":"1\n2\n'* ]]
	[[ ! -e $D/in/bad.txt.result ]]
	assert_tmp_empty
}

@test "jq-run: a command killed by a signal, one not found, one that did not write <out>" {
	printf 'a' >"$D/in/sig.a"
	printf 'b' >"$D/in/keep.b"
	serve "$D/in/sig.a" "$D/in/keep.b"
	# shellcheck disable=SC2016
	jr --match '*.a' "$SERVER" -- sh -c 'kill -KILL $$'
	assert_failure 1
	run stat_json
	[[ $output == *'"status":"signal 9"'* ]]
	stop_server
	serve "$D/in/sig.a" "$D/in/keep.b"
	# a node that cannot run its command takes no job at all (issue 10)
	jr --match '*.a' "$SERVER" -- /nonexistent/cmd '<in>'
	assert_failure 2
	[[ $stderr == *'cannot run COMMAND: /nonexistent/cmd: No such file or directory; no job taken'* ]]
	jr "$SERVER" -- nosuchcmd-jq '<in>'
	assert_failure 2
	[[ $stderr == *'nosuchcmd-jq: not found in PATH'* ]]
	run stat_json
	[[ $output == *'"waiting":2'* ]]
	stop_server
	serve "$D/in/sig.a" "$D/in/keep.b"
	jr --match '*.a' "$SERVER" -- true '<out>'
	assert_failure 1
	run stat_json
	[[ $output == *'did not write'* ]]
	assert_tmp_empty
}

@test "jq-run: a mistyped placeholder is a usage error before any job is taken; the tree is untouched" {
	printf 'a' >"$D/in/a.wav"
	serve "$D/in/a.wav"
	cd "$D"
	local typo
	for typo in '<outt.mp3>' '{inn}' '<ot>' '<nmae>' '<IN>' '<in.wav>'; do
		jr "$SERVER" -- cp '<in>' "$typo"
		assert_failure 2
		[[ $stderr == *"looks like a mistyped placeholder"* ]]
		[[ $stderr == *"<in> <out> <out.EXT> <name> <id>"* ]]
		[[ $stderr == *"$typo"* ]]
	done
	# nothing was taken or written: the job still waits, no literal file appeared
	run stat_json
	[[ $output == *'"waiting":1'* ]]
	assert_equal "$(ls -A "$D/in")" "a.wav"
	[[ ! -e $D/'<outt.mp3>' ]]
	assert_tmp_empty
	# brackets that are not near misses, and the doubled escape, pass as text
	jr "$SERVER" -- sh -c 'cat "$1" >"$2"; echo "<i>{print}<<outt>"' sh '<in>' '<out>'
	assert_success
	assert_equal "$(cat "$D/in/a.wav.result")" "a"
}

@test "jq-run: a FIFO or a symlink the command leaves at <out> fails the job; nothing blocks or is followed" {
	printf 'a' >"$D/in/f.a"
	printf 'b' >"$D/in/keep.b"
	printf 'secret\n' >"$D/secret"
	serve "$D/in/f.a" "$D/in/keep.b"
	# a FIFO nobody writes: opening it for reading must not hang the worker
	# shellcheck disable=SC2016
	jr --match '*.a' "$SERVER" -- sh -c 'mkfifo "$1"' sh '<out>'
	assert_failure 1
	run stat_json
	[[ $output == *'a FIFO, not a regular file'* ]]
	stop_server
	serve "$D/in/f.a" "$D/in/keep.b"
	# shellcheck disable=SC2016
	jr --match '*.a' "$SERVER" -- sh -c 'ln -s "$2" "$1"' sh '<out>' "$D/secret"
	assert_failure 1
	run stat_json
	[[ $output == *'a symbolic link (not followed)'* ]]
	[[ ! -e $D/in/f.a.result ]]
	assert_tmp_empty
}

@test "jq-run: --timeout kills the process group with TERM, then KILL after the grace" {
	printf 'a' >"$D/in/slow.a"
	printf 'b' >"$D/in/keep.b"
	serve "$D/in/slow.a" "$D/in/keep.b"
	# the background sleep is in the command's group: it must die too
	# shellcheck disable=SC2016
	jr --match '*.a' --timeout 300ms "$SERVER" -- sh -c 'sleep 300 & echo $! >"$M/child"; wait'
	assert_failure 1
	run stat_json
	[[ $output == *'"status":"timeout"'* ]]
	assert_dead "$(<"$M/child")"
	stop_server
	# a command that ignores SIGTERM is killed after the grace period
	serve "$D/in/slow.a" "$D/in/keep.b"
	# shellcheck disable=SC2016
	jr --match '*.a' --timeout 200ms "$SERVER" -- sh -c 'trap "" TERM; echo $$ >"$M/pid"; sleep 300'
	assert_failure 1
	run stat_json
	[[ $output == *'"status":"timeout"'* ]]
	assert_dead "$(<"$M/pid")"
	assert_tmp_empty
}

@test "jq-run: stdout results on both sides of the 64 KiB held back before the PUT arrive whole" {
	local n f
	# jq-run holds up to 64 KiB of stdout so that a small result goes out whole with the
	# next TAKE, and streams past that: sizes around the edge, and failures on both sides
	for n in 0 1 65535 65536 65537 200000; do
		head -c "$n" /dev/urandom >"$D/in/ok-$n.bin"
	done
	for n in 10 65537; do
		head -c "$n" /dev/urandom >"$D/in/bad-$n.bin"
	done
	serve --retries 0 "$D"/in/*.bin
	# shellcheck disable=SC2016
	jr -j 2 "$SERVER" -- sh -c 'cat; case $JQ_JOB_NAME in *bad-*) exit 3;; esac'
	assert_failure 1
	wait_server_exit
	assert_equal "$status" 1
	for f in "$D"/in/ok-*.bin; do
		cmp "$f" "$f.result"
	done
	assert_not_exists "$D/in/bad-10.bin.result"
	assert_not_exists "$D/in/bad-65537.bin.result"
	assert_equal "$(grep -c 'failed: exit 3' <<<"$stderr")" 2
	run find "$D/in" -name '.*'
	assert_output ''
	assert_tmp_empty
}

@test "jq-run: a result sent while every other job is held waits, then ends with the run" {
	printf 'quick\n' >"$D/in/a.txt"
	printf 'slow\n' >"$D/in/b.txt"
	serve "$D/in/a.txt" "$D/in/b.txt"
	# worker 1 holds b until "go"; worker 2 does a, and asks for more with its result:
	# nothing is free, so it must deliver, wait, and end only when b is done
	jr_bg "$D/w1" -j 1 --match '*b.txt' "$SERVER" -- \
		sh -c 'echo x >"$M/b.started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; cat'
	wait_for_file "$M/b.started"
	jr_bg "$D/w2" -j 1 "$SERVER" -- cat
	local w2=$JR_PID
	wait_for_file "$D/in/a.txt.result"
	assert_equal "$(<"$D/in/a.txt.result")" quick
	sleep 0.5
	kill -0 "$w2"	# still waiting for work
	touch "$M/go"
	wait_pid "$w2" 60
	assert_equal "$status" 0
	wait_server_exit
	assert_equal "$status" 0
	assert_equal "$(<"$D/in/b.txt.result")" slow
}

@test "jq-run: -j 4 with 50 jobs delivers each result exactly once" {
	make_files "$D/in" 50 txt
	serve "$D"/in/*.txt
	# shellcheck disable=SC2016
	jr -j 4 "$SERVER" -- sh -c 'echo "$JQ_JOB_ID $JQ_WORKER" >>"$M/ids"; tr a-z A-Z'
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	assert_equal "$(wc -l <"$M/ids")" 50
	assert_equal "$(cut -d' ' -f1 "$M/ids" | sort -u | wc -l)" 50
	for f in "$D"/in/*.txt; do
		assert_equal "$(tr a-z A-Z <"$f")" "$(<"$f.result")"
	done
	assert_tmp_empty
}

@test "jq-run: SIGTERM stops taking jobs; running jobs finish and deliver; exit 9" {
	make_files "$D/in" 4 txt
	serve "$D"/in/*.txt
	# shellcheck disable=SC2016
	jr_bg "$D/run" -v -j 2 "$SERVER" -- sh -c 'touch "$M/$JQ_JOB_ID"; while [ ! -e "$M/go" ]; do sleep 0.05; done; tr a-z A-Z'
	wait_for_line "$D/run.err" "started" 2
	kill -TERM "$JR_PID"
	wait_for_line "$D/run.err" "last job of this slot" 2
	touch "$M/go"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 9
	assert_equal "$(find "$D/in" -name '*.result' | wc -l)" 2
	run stat_json
	assert_equal "$(json_field "$output" waiting)" 2
	assert_equal "$(json_field "$output" running)" 0
	assert_equal "$(json_field "$output" "done")" 2
	assert_tmp_empty
}

@test "jq-run: the first SIGTERM says the running jobs finish first, without -v" {
	make_files "$D/in" 1 txt
	serve "$D"/in/*.txt
	# shellcheck disable=SC2016
	jr_bg "$D/run" -j 1 "$SERVER" -- sh -c 'echo $$ >"$M/$JQ_JOB_ID"; exec sleep 300'
	wait_for_file "$M/1"
	kill -TERM "$JR_PID"
	wait_for_line "$D/run.err" "jq-run: stopping: running jobs finish first (signal again to stop now)"
	kill -TERM "$JR_PID"
	wait_for_line "$D/run.err" "jq-run: stopping now: running jobs are handed back"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 9
}

@test "jq-run: a second SIGTERM kills the commands and hands their jobs back at once" {
	make_files "$D/in" 3 txt
	serve "$D"/in/*.txt
	# shellcheck disable=SC2016
	jr_bg "$D/run" -v -j 2 "$SERVER" -- sh -c 'echo $$ >"$M/$JQ_JOB_ID"; exec sleep 300'
	wait_for_line "$D/run.err" "started" 2
	wait_for_file "$M/1"
	wait_for_file "$M/2"
	kill -TERM "$JR_PID"
	wait_for_line "$D/run.err" "stopping:"
	kill -TERM "$JR_PID"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 9
	run stat_json
	assert_equal "$(json_field "$output" waiting)" 3
	assert_equal "$(json_field "$output" running)" 0
	assert_dead "$(<"$M/1")"
	assert_dead "$(<"$M/2")"
	assert_tmp_empty
	# the jobs are really free: another worker does them all
	jr "$SERVER" -- tr a-z A-Z
	assert_success
	assert_equal "$(find "$D/in" -name '*.result' | wc -l)" 3
}

@test "jq-run: a second SIGTERM while a job's data is still streaming hands the job back too" {
	# sleep never reads its stdin, so most of the 8 MB stay unread in the socket
	head -c 8000000 /dev/zero >"$D/in/big.bin"
	serve "$D/in/big.bin"
	# shellcheck disable=SC2016
	jr_bg "$D/run" -v "$SERVER" -- sh -c 'echo $$ >"$M/pid"; exec sleep 300'
	wait_for_file "$M/pid"
	kill -TERM "$JR_PID"
	wait_for_line "$D/run.err" "stopping:"
	kill -TERM "$JR_PID"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 9
	assert_dead "$(<"$M/pid")"
	wait_stat waiting 1
	assert_tmp_empty
}

@test "jq-run: when jq-run itself is SIGKILLed, its slots kill the command and give the job back" {
	printf 'data' >"$D/in/a.txt"
	serve "$D/in/a.txt"
	# shellcheck disable=SC2016
	jr_bg "$D/run" -j 1 "$SERVER" -- sh -c 'echo $$ >"$M/pid"; exec sleep 300'
	wait_for_file "$M/pid"
	kill -KILL "$JR_PID"
	wait_stat waiting 1
	local i
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		[[ -z $(ls -A "$TMPD") ]] && break
		sleep 0.05
	done
	assert_tmp_empty
	assert_dead "$(<"$M/pid")"
}

@test "jq-run: SIGINT works like SIGTERM, and during <in> jobs too" {
	printf 'data' >"$D/in/a.txt"
	serve "$D/in/a.txt"
	# shellcheck disable=SC2016
	jr_bg "$D/run" -v "$SERVER" -- sh -c 'echo $$ >"$M/pid"; exec sleep 300' '<in>' '<out>'
	wait_for_file "$M/pid"
	kill -INT "$JR_PID"
	wait_for_line "$D/run.err" "stopping:"
	kill -INT "$JR_PID"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 9
	run stat_json
	assert_equal "$(json_field "$output" waiting)" 1
	assert_tmp_empty
}

@test "jq-run: jobs longer than the server's lease keep it alive: each runs once" {
	not_under_valgrind "2 s leases vs a 20-50 times slower jq-run: timing"
	printf 'a' >"$D/in/a.txt"
	printf 'b' >"$D/in/b.dat"
	serve --lease 2s "$D/in/a.txt" "$D/in/b.dat"
	# an idle third slot would get a job whose lease lapsed at once
	# shellcheck disable=SC2016
	jr -j 3 "$SERVER" -- sh -c 'echo "$JQ_JOB_ID" >>"$M/runs"; sleep 5; cat "$1"' sh '{in}'
	assert_success
	assert_equal "$(sort "$M/runs" | tr '\n' ' ')" "1 2 "
	assert_equal "$(<"$D/in/a.txt.result")" "a"
	# the same with the result streamed from stdout while it runs, once the first server has
	# left (it lingers 1 s, holding the list: a second server on it is refused meanwhile)
	wait_server_exit 30
	rm "$M/runs"
	serve --lease 2s "$D/in/a.txt" "$D/in/b.dat"
	# shellcheck disable=SC2016
	jr -j 3 "$SERVER" -- sh -c 'echo "$JQ_JOB_ID" >>"$M/runs"; cat; sleep 5; echo end'
	assert_success
	assert_equal "$(sort "$M/runs" | tr '\n' ' ')" "1 2 "
	assert_equal "$(<"$D/in/b.dat.result")" "bend"
}

@test "jq-run: a result refused because another worker delivered first is logged, not fatal" {
	printf 'a' >"$D/in/a.txt"
	printf 'b' >"$D/in/keep.b"
	serve "$D/in/a.txt" "$D/in/keep.b"
	# shellcheck disable=SC2016
	jr_bg "$D/run" --match '*.txt' "$SERVER" -- sh -c 'echo x >"$M/started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; echo mine'
	wait_for_file "$M/started"
	# another worker: one that took the job from an earlier server (matched by the input)
	echo theirs | jq-put "$SERVER" "$(old_handle 1 "$D/in/a.txt")"
	touch "$M/go"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 0
	assert_equal "$(<"$D/in/a.txt.result")" "theirs"
	grep -q "result not accepted" "$D/run.err"
	assert_tmp_empty
}

@test "jq-run: losing the server during a job exits 6 and leaves no temp dir" {
	printf 'a' >"$D/in/a.txt"
	serve "$D/in/a.txt"
	# shellcheck disable=SC2016
	jr_bg "$D/run" --reconnect 0 "$SERVER" -- sh -c 'echo x >"$M/started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; cat' '<in>'
	wait_for_file "$M/started"
	stop_server
	touch "$M/go"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 6
	assert_tmp_empty
}

@test "jq-run: names with a leading dash, spaces and shell metacharacters are plain paths" {
	printf 'one' >"$D/in/-x.wav"
	printf 'two' >"$D/in/a b;\$(touch pwned)'\".txt"
	serve -- "$D/in/-x.wav" "$D/in/a b;\$(touch pwned)'\".txt"
	jr "$SERVER" -- cp '<in>' '{out}'
	assert_success
	cmp "$D/in/-x.wav" "$D/in/-x.wav.result"
	cmp "$D/in/a b;\$(touch pwned)'\".txt" "$D/in/a b;\$(touch pwned)'\".txt.result"
	[[ ! -e pwned && ! -e $D/pwned ]]
	assert_tmp_empty
}

@test "jq-run: --max-jobs counts jobs across all slots" {
	make_files "$D/in" 10 txt
	serve "$D"/in/*.txt
	jr -j 3 --max-jobs 4 "$SERVER" -- cat
	assert_success
	assert_equal "$(find "$D/in" -name '*.result' | wc -l)" 4
	run stat_json
	assert_equal "$(json_field "$output" "done")" 4
	assert_equal "$(json_field "$output" waiting)" 6
	assert_tmp_empty
}

@test "jq-run: --match takes only matching jobs and ends when none remains" {
	make_files "$D/in" 3 txt
	make_files "$D/in" 2 log
	serve "$D"/in/*.txt "$D"/in/*.log
	jr -j 2 --match '*.log' "$SERVER" -- cat
	assert_success
	assert_equal "$(find "$D/in" -name '*.log.result' | wc -l)" 2
	assert_equal "$(find "$D/in" -name '*.txt.result' | wc -l)" 0
	run stat_json
	assert_equal "$(json_field "$output" waiting)" 3
}

@test "jq-run: --keep-tmp keeps the job directory and says where" {
	printf 'k' >"$D/in/k.txt"
	serve "$D/in/k.txt"
	jr --keep-tmp "$SERVER" -- cp '<in>' '<out>'
	assert_success
	[[ $stderr =~ kept\ ($TMPD/jq-run\.[^[:space:]]*) ]]
	[[ -f ${BASH_REMATCH[1]}/in/k.txt && -f ${BASH_REMATCH[1]}/out/k.txt ]]
}

@test "jq-run: usage errors exit 2, an unreachable server 6" {
	jr 127.0.0.1:1 tr a-z A-Z
	assert_failure 2
	[[ $stderr == *"missing '--'"* ]]
	jr 127.0.0.1:1 --
	assert_failure 2
	jr -j 0 127.0.0.1:1 -- cat
	assert_failure 2
	jr -j x 127.0.0.1:1 -- cat
	assert_failure 2
	jr --timeout 5x 127.0.0.1:1 -- cat
	assert_failure 2
	jr --max-jobs -1 127.0.0.1:1 -- cat
	assert_failure 2
	jr --bogus 127.0.0.1:1 -- cat
	assert_failure 2
	[[ $stderr == *"Try 'jq-run --help'"* ]]
	jr 127.0.0.1:1 extra -- cat
	assert_failure 2
	jr 127.0.0.1:1 -- cp '<out>' '<out.mp3>'
	assert_failure 2
	jr 127.0.0.1:1 -- cp '<in>' '<out.a/b>'
	assert_failure 2
	JQ_SERVER='' jr -- cat
	assert_failure 2
	jr --tmpdir /nonexistent 127.0.0.1:1 -- cat
	assert_failure 8
	jr -j 1 --reconnect 0 127.0.0.1:1 -- cat
	assert_failure 6
	run jq-run --version
	assert_success
	assert_output --partial "0.1.0"
	run jq-run --help
	assert_success
	assert_output --partial "[SERVER] -- COMMAND [ARG]..."
	assert_output --partial "--max-jobs"
}

@test "jq-run: JQ_SERVER is used when SERVER is omitted; options may follow SERVER" {
	printf 'e' >"$D/in/e.txt"
	serve "$D/in/e.txt"
	JQ_SERVER=$SERVER jr -- tr e E
	assert_success
	assert_equal "$(<"$D/in/e.txt.result")" "E"
}

# install_audio_tools: sox and lame from Debian when missing (root only), else skip
install_audio_tools() {
	command -v sox >/dev/null && command -v lame >/dev/null && return 0
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		apt-get install -y sox lame >/dev/null 2>&1 || true
	fi
	command -v sox >/dev/null && command -v lame >/dev/null ||
		skip "sox and lame are needed (apt-get install -y sox lame)"
}

@test "jq-run: WAV to MP3 with sox and lame, two workers, TCP and UNIX socket" {
	install_audio_tools
	local i
	for i in 1 2 3 4 5 6; do
		sox -n -r 8000 -c 1 "$D/in/tone $i.wav" synth 0.5 sine $((200 * i))
	done
	serve -l 127.0.0.1:0 -l "unix:$JQ_TMP/sock" -r '{stem}.mp3' "$D"/in/*.wav
	local tcp unix
	tcp=$(grep -v '^unix:' <<<"$SERVER_ADDRS")
	unix=$(grep '^unix:' <<<"$SERVER_ADDRS")
	jr_bg "$D/tcp" -j 2 "$tcp" -- lame --quiet '<in>' '{out.mp3}'
	local p1=$JR_PID
	jr_bg "$D/unix" -j 2 "$unix" -- lame --quiet - -
	local p2=$JR_PID
	wait_pid "$p1" 120
	assert_equal "$status" 0
	wait_pid "$p2" 120
	assert_equal "$status" 0
	wait_server_exit
	assert_equal "$status" 0
	for i in 1 2 3 4 5 6; do
		run file -b "$D/in/tone $i.mp3"
		assert_output --partial "MPEG ADTS, layer III"
	done
	assert_tmp_empty
}

@test "the design's line: jq-serve *.wav and jq-run -- ffmpeg -i '<in>' '<out>' (WAV in, WAV out; MP3 with -r)" {
	# share/setup check installs ffmpeg; no skip: this is the line the README opens with
	command -v ffmpeg sox
	local i
	for i in 1 2 3; do
		sox -n -r 8000 -c 1 "$D/in/t$i.wav" synth 0.3 sine $((300 * i))
	done
	# <out> takes the input's extension: ffmpeg can tell the format
	serve "$D"/in/*.wav
	jr -j 2 "$SERVER" -- ffmpeg -loglevel error -i '<in>' '<out>'
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	for i in 1 2 3; do
		run file -b "$D/in/t$i.wav.result"
		assert_output --partial "WAVE audio"
	done
	# with -r '{stem}.mp3' the server names the result, and <out> ends in .mp3
	serve -r '{stem}.mp3' "$D"/in/*.wav
	# the unquoted {} spelling, as typed over ssh
	# shellcheck disable=SC1083
	jr -j 2 "$SERVER" -- ffmpeg -loglevel error -i {in} {out}
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	for i in 1 2 3; do
		run file -b "$D/in/t$i.mp3"
		assert_output --partial "layer III"
	done
	assert_tmp_empty
}

@test "jq-run: the default -j is the CPUs it may run on (taskset narrows it to one slot)" {
	command -v taskset >/dev/null || skip "taskset (util-linux) is not installed"
	make_files "$D/in" 4 txt
	serve --joblog "$D/joblog" "$D"/in/*.txt
	run --separate-stderr timeout -k 5 120 taskset -c 0 jq-run --tmpdir "$TMPD" --worker pinned "$SERVER" -- cat
	assert_success
	wait_server_exit 30
	# one slot is named as the worker; two or more would be pinned/1, pinned/2 ...
	assert_equal "$(awk -F '\t' 'NR > 1 { print $3 }' "$D/joblog" | sort -u)" "pinned"
	assert_equal "$(awk 'NR > 1' "$D/joblog" | wc -l)" 4
}

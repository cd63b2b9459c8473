#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr and $stderr_lines are set by bats' run --separate-stderr
# jq-take and jq-put against a real jq-serve: many jobs through concurrent
# worker loops (TCP and UNIX), empty and 1 GiB jobs, the id/name outputs,
# --match, --wait, refusals (second put, unknown id), and connection errors.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
}

# worker NAME DIR: take jobs until jq-take stops, answering each with a result
# made of the worker's name and the job data.  Logs every id it took to
# DIR/ids, keeps a copy of every result it sent as DIR/sent.ID and leaves the
# final jq-take status in DIR/end.  Runs under jq_bg (exported variables only).
worker() {
	local name=$1 dir=$2 h id rc
	mkdir -p "$dir"
	while :; do
		rc=0
		h=$(jq-take --worker "$name" -o "$dir/in" "$SERVER") || rc=$?
		if ((rc != 0)); then
			echo "$rc" >"$dir/end"
			return 0
		fi
		id=${h%%:*}
		printf '%s\n' "$id" >>"$dir/ids"
		{ printf 'done by %s\n' "$name"; cat "$dir/in"; } >"$dir/sent.$id"
		jq-put "$SERVER" "$h" "$dir/sent.$id" || { echo "put $id: $?" >"$dir/end"; return 1; }
	done
}

# two_workers N: serve N files through two concurrent workers on $SERVER and
# check that every job was taken exactly once and every result is the bytes
# its worker sent.  The server must be started with the N files of $D/in.
two_workers() {
	local n=$1 w1 w2 i id f
	export SERVER
	export -f worker
	jq_bg worker w1 "$D/w1"
	w1=$!
	jq_bg worker w2 "$D/w2"
	w2=$!
	wait_pid "$w1"
	assert_equal "$status" 0
	wait_pid "$w2"
	assert_equal "$status" 0
	wait_server_exit
	assert_equal "$status" 0
	# a worker stops on "no work remains" (3), or when the server has gone (6)
	for w in w1 w2; do
		run cat "$D/$w/end"
		assert_output --regexp '^(3|6)$'
	done
	# both workers worked (a test of concurrency, not of the scheduler: with
	# 200 jobs a worker that never got one means the loop ran serially)
	assert_file_exist "$D/w1/ids"
	assert_file_exist "$D/w2/ids"
	run sort -n "$D/w1/ids" "$D/w2/ids"
	assert_equal "${#lines[@]}" "$n"
	run bash -c "sort -n '$D/w1/ids' '$D/w2/ids' | uniq -d"
	assert_output ''
	for ((i = 1; i <= n; i++)); do
		printf -v f '%s/in/file%04d.dat' "$D" "$i"
		if [[ -e $D/w1/sent.$i ]]; then w=w1; else w=w2; fi
		assert_file_exist "$D/$w/sent.$i"
		# job ids follow the operand order, which the glob sorted
		cmp "$f.result" "$D/$w/sent.$i"
		# and the worker received the right data
		cmp <(tail -n +2 "$f.result") "$f"
	done
	run bash -c "ls '$D/in' | grep -c '\.result$'"
	assert_output "$n"
}

@test "200 jobs, two concurrent workers over TCP: each job once, results byte-identical" {
	not_under_valgrind "800 program start-ups under valgrind take ~10 min"
	make_files "$D/in" 200
	start_server "$D"/in/file*.dat
	[[ $SERVER == 127.0.0.1:* ]]
	two_workers 200
}

@test "200 jobs, two concurrent workers over a UNIX socket" {
	not_under_valgrind "800 program start-ups under valgrind take ~10 min"
	make_files "$D/in" 200
	start_server_unix "$D"/in/file*.dat
	[[ $SERVER == unix:/* ]]
	two_workers 200
}

@test "an empty file is a job with empty data, and an empty result is stored" {
	: >"$D/empty"
	printf 'x' >"$D/other"
	start_server "$D/empty" "$D/other"
	run -0 jq-take -o "$D/got" "$SERVER"
	assert_handle 1
	assert_file_exist "$D/got"
	assert_file_empty "$D/got"
	: >"$D/res"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/res"
	assert_file_exist "$D/empty.result"
	assert_file_empty "$D/empty.result"
	run -0 jq-take -o "$D/got" "$SERVER"
	assert_handle 2
	run -0 jq-put "$SERVER" "$HANDLE" - <<<""
	wait_server_exit
	assert_equal "$status" 0
	run cat "$D/other.result"
	assert_output ''
	assert_equal "$(stat -c %s "$D/other.result")" 1
}

# bats test_tags=slow
@test "a 1 GiB job and a 1 GiB result travel intact" {
	not_under_valgrind "4 GiB through valgrind take too long"
	truncate -s 1G "$D/big"
	# non-zero bytes at the start, the middle and the very end catch offset bugs
	printf 'start' | dd of="$D/big" conv=notrunc status=none
	printf 'middle' | dd of="$D/big" bs=1 seek=$((512 << 20)) conv=notrunc status=none
	printf 'end' | dd of="$D/big" bs=1 seek=$(((1 << 30) - 3)) conv=notrunc status=none
	assert_equal "$(stat -c %s "$D/big")" $((1 << 30))
	start_server "$D/big"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	cmp "$D/big" "$D/in"
	# send back something different from the input, of the same size
	printf 'START' | dd of="$D/in" conv=notrunc status=none
	run -0 jq-put "$SERVER" "$HANDLE" "$D/in"
	wait_server_exit
	assert_equal "$status" 0
	cmp "$D/in" "$D/big.result"
	rm -f "$D/in" "$D/big.result" "$D/big"
}

@test "jq-take without -o writes the data to stdout and the id to --id-file" {
	printf 'one\n' >"$D/a"
	printf 'two\0bytes\n' >"$D/b"
	start_server "$D/a" "$D/b"
	jq-take --id-file "$D/id" "$SERVER" >"$D/data"
	output=$(cat "$D/id")
	assert_handle 1
	cmp "$D/data" "$D/a"
	jq-take -i "$D/id2" "$SERVER" >"$D/data2"
	output=$(cat "$D/id2")
	assert_handle 2
	cmp "$D/data2" "$D/b"
	# no temporary files left beside the id file
	run ls -A "$D"
	assert_output "$(printf '%s\n' a b data data2 id id2)"
}

@test "jq-take without -o and without --id-file is a usage error and takes nothing" {
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	run --separate-stderr -2 jq-take "$SERVER"
	assert_output ''
	assert_equal "${#stderr_lines[@]}" 2
	[[ ${stderr_lines[0]} == jq-take:*--id-file* ]]
	# the job is still there
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
}

@test "jq-take -n prints the name after the id; -z ends both with NUL" {
	mkdir "$D/dir"
	printf 'A\n' >"$D/dir/plain.wav"
	printf 'B\n' >"$D/dir/"$'new\nline'
	printf 'C\n' >"$D/dir/-dash é"
	start_server -- "$D/dir/plain.wav" "$D/dir/"$'new\nline' "$D/dir/-dash é"
	run -0 jq-take -n -o "$D/in" "$SERVER"
	[[ ${lines[0]} =~ ^1:[0-9a-f]{32}$ ]]
	assert_equal "${#lines[@]}" 2
	[[ ${lines[1]} == *plain.wav ]]
	# id NUL name NUL, the name holding a newline
	jq-take -n -z -o "$D/in" "$SERVER" >"$D/rec"
	assert_equal "$(tail -c 1 "$D/rec" | od -An -tx1 | tr -d ' ')" 00
	readarray -d '' rec <"$D/rec"
	assert_equal "${#rec[@]}" 2
	[[ ${rec[0]} =~ ^2:[0-9a-f]{32}$ ]]
	[[ ${rec[1]} == *$'new\nline' ]]
	cmp "$D/in" "$D/dir/"$'new\nline'
	jq-take -z -o "$D/in" "$SERVER" >"$D/rec"
	readarray -d '' rec <"$D/rec"
	assert_equal "${#rec[@]}" 1
	[[ ${rec[0]} =~ ^3:[0-9a-f]{32}$ ]]
	cmp "$D/in" "$D/dir/-dash é"
}

@test "jq-take -n with --id-file puts id and name in the id file" {
	printf 'A\n' >"$D/a b.wav"
	start_server "$D/a b.wav"
	jq-take -n -i "$D/id" "$SERVER" >"$D/data"
	readarray -t rec <"$D/id"
	[[ ${rec[0]} =~ ^1:[0-9a-f]{32}$ ]]
	[[ ${rec[1]} == *'a b.wav' ]]
	cmp "$D/data" "$D/a b.wav"
}

@test "jq-take --match takes only matching jobs; exit 3 when none matches" {
	printf 'wav\n' >"$D/a.wav"
	printf 'txt\n' >"$D/b.txt"
	printf 'wav2\n' >"$D/c.wav"
	start_server "$D/a.wav" "$D/b.txt" "$D/c.wav"
	run -0 jq-take -m '*.txt' -o "$D/in" "$SERVER"
	assert_handle 2
	cmp "$D/in" "$D/b.txt"
	rm "$D/in"
	# b.txt is held by the take above: a matching take would wait for it
	run -5 jq-take --match '*.txt' --wait 0 -o "$D/in" "$SERVER"
	printf 'r\n' >"$D/r"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/r"
	# b.txt is done and no other job matches: no work for this pattern
	run -3 jq-take --match '*.txt' -o "$D/in" "$SERVER"
	assert_output ''
	assert_file_not_exist "$D/in"
	run -3 jq-take --match '*.mp3' -o "$D/in" "$SERVER"
	assert_file_not_exist "$D/in"
	run -0 jq-take --match '*c.wav' -o "$D/in" "$SERVER"
	assert_handle 3
}

@test "jq-take --wait 0 while the only job is held exits 5 and creates nothing" {
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	run -5 jq-take --wait 0 -o "$D/in2" "$SERVER"
	assert_output ''
	assert_file_not_exist "$D/in2"
	run -5 jq-take --wait 1 -o "$D/in2" "$SERVER"
	assert_file_not_exist "$D/in2"
	run ls -A "$D"
	assert_output "$(printf '%s\n' a in)"
}

@test "a jq-take waiting while every job is held exits 3 when the server finishes" {
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	# a second worker waits: the only job is held by the first
	jq_bg jq-take --worker waiter -o "$D/in2" "$SERVER"
	w=$!
	# wait (bounded) until the server knows it, so the put below cannot overtake it
	for ((i = 0; i < 400; i++)); do
		run jq-stat "$SERVER"
		[[ $output == *waiter* ]] && break
		sleep 0.05
	done
	assert_output --partial waiter
	run -0 jq-put "$SERVER" "$HANDLE" "$D/in"
	wait_pid "$w"
	assert_equal "$status" 3
	assert_file_not_exist "$D/in2"
	wait_server_exit
	assert_equal "$status" 0
}

@test "exit 3 when no work remains, without creating the output file" {
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	start_server "$D/a" "$D/b"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/in"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 2
	# job 1 done, job 2 held: only a matching glob could still wait; this one cannot match
	run -3 jq-take -m 'a' -o "$D/none" "$SERVER"
	assert_file_not_exist "$D/none"
}

@test "jq-put --fail records a failure; the server exits 1 at the end" {
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	start_server "$D/a" "$D/b"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	h1=$HANDLE
	run -0 jq-put --fail -m 'lame: bad header' -x 3 "$SERVER" "$h1"
	assert_file_not_exist "$D/a.result"
	run -0 jq-stat "$SERVER"
	assert_output --partial 'bad header'
	# a failed job accepts no result either
	run --separate-stderr -4 jq-put "$SERVER" "$h1" "$D/in"
	assert_file_not_exist "$D/a.result"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 2
	run -0 jq-put "$SERVER" "$HANDLE" "$D/in"
	wait_server_exit
	assert_equal "$status" 1
	assert_file_not_exist "$D/a.result"
	cmp "$D/b.result" "$D/b"
}

@test "a second put is refused with exit 4 and the first result stays" {
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	start_server "$D/a" "$D/b"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	h1=$HANDLE
	printf 'first\n' >"$D/r1"
	printf 'second, longer\n' >"$D/r2"
	run -0 jq-put "$SERVER" "$h1" "$D/r1"
	cmp "$D/a.result" "$D/r1"
	run --separate-stderr -4 jq-put "$SERVER" "$h1" "$D/r2"
	assert_output ''
	assert_equal "${#stderr_lines[@]}" 1
	[[ $stderr == jq-put:* ]]
	cmp "$D/a.result" "$D/r1"
	run -4 jq-put --fail "$SERVER" "$h1"
	cmp "$D/a.result" "$D/r1"
	# no temporary file was left in the result directory
	run ls -A "$D"
	assert_output "$(printf '%s\n' a a.result b in r1 r2)"
}

@test "a put for an unknown job id is refused with exit 4" {
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	printf 'r\n' >"$D/r"
	# the handle of a hand-out of this server, sent with ids no job has
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	tok=${HANDLE#*:}
	run --separate-stderr -4 jq-put "$SERVER" "999:$tok" "$D/r"
	[[ $stderr == jq-put:*999* ]]
	run -4 jq-put "$SERVER" "18446744073709551615:$tok" "$D/r"
	run -4 jq-put --fail "$SERVER" "2:$tok"
	# the server still holds its one job for the take above
	assert_file_not_exist "$D/a.result"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/r"
	cmp "$D/a.result" "$D/r"
}

# A result needs a token from a hand-out (jq-protocol(7), "Attempt tokens"): before the design of
# issue 9 a result could be put for a job nobody took, by its id alone; now only a token an
# earlier server handed out can name such a job, matched by its input's identity (device, inode,
# size, mtime), never by the id.
@test "a result for a job nobody took needs an earlier server's token for its input" {
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	start_server "$D/a" "$D/b"
	printf 'r\n' >"$D/r"
	# a bare id is a usage error: the handle comes from jq-take
	run --separate-stderr -2 jq-put "$SERVER" 2 "$D/r"
	[[ $stderr == *jq-take* ]]
	# a token an earlier server handed out for b, sent as job 1: stored as b's, by the input
	run -0 jq-put "$SERVER" "$(old_handle 1 "$D/b")" "$D/r"
	cmp "$D/b.result" "$D/r"
	assert_file_not_exist "$D/a.result"
	# an earlier server's token for an input no job here has: refused, nothing stored
	run --separate-stderr -4 jq-put "$SERVER" "1:0badc0de00000001$(printf '%016x' 1)" "$D/r"
	[[ $stderr == *STALE* || $stderr == *'no job here has that input'* ]]
	assert_file_not_exist "$D/a.result"
	# job 2 is done, so job 1 is the only one left
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
}

@test "an unreachable server gives exit 6 for every client" {
	jq_tmpdir
	printf 'r\n' >"$D/r"
	# a UNIX path nobody listens on
	run --separate-stderr -6 jq-take -o "$D/in" "unix:$JQ_TMP/nosock"
	[[ $stderr == jq-take:* ]]
	assert_file_not_exist "$D/in"
	run -6 jq-put "unix:$JQ_TMP/nosock" "$(old_handle 1 "$D/r")" "$D/r"
	run -6 jq-stat "unix:$JQ_TMP/nosock"
	# a TCP port that was just closed: start a server, stop it, reuse its address
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	addr=$SERVER
	stop_server
	run -6 jq-take -o "$D/in" "$addr"
	run -6 jq-put "$addr" "$(old_handle 1 "$D/r")" "$D/r"
	run -6 jq-stat "$addr"
	assert_file_not_exist "$D/in"
}

@test "a bad address is a usage error (exit 2) for every client" {
	printf 'r\n' >"$D/r"
	for addr in 'h:70000' 'h:x' 'h:' '[::1' 'unix:' '127.0.0.1:0'; do
		run --separate-stderr -2 jq-take -o "$D/in" "$addr"
		[[ $stderr == jq-take:* ]]
		run -2 jq-put "$addr" "$(old_handle 1 "$D/r")" "$D/r"
		run -2 jq-stat "$addr"
	done
	assert_file_not_exist "$D/in"
}

@test "JQ_SERVER is used when no SERVER operand is given" {
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	start_server "$D/a" "$D/b"
	export JQ_SERVER=$SERVER
	run -0 jq-take -o "$D/in"
	assert_handle 1
	run -0 jq-stat
	# jq-put ID FILE: a first operand that is a job handle is the id
	run -0 jq-put "$HANDLE" "$D/in"
	cmp "$D/a.result" "$D/a"
	run -0 jq-take -o "$D/in"
	assert_handle 2
	# an explicit operand wins over JQ_SERVER
	JQ_SERVER=unix:/nonexistent/sock run -0 jq-stat "$SERVER"
	run -0 jq-put --fail "$HANDLE"
	wait_server_exit
	assert_equal "$status" 1
}

@test "without SERVER and without JQ_SERVER the clients exit 2" {
	printf 'r\n' >"$D/r"
	run --separate-stderr -2 jq-take -o "$D/in"
	[[ $stderr == *JQ_SERVER* ]]
	run -2 jq-put "$(old_handle 1 "$D/r")" "$D/r"
	run -2 jq-stat
	JQ_SERVER="" run -2 jq-stat
}

@test "jq-put reads standard input when FILE is absent or -" {
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	start_server "$D/a" "$D/b"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	printf 'from stdin\n' | jq-put "$SERVER" "$HANDLE"
	run cat "$D/a.result"
	assert_output 'from stdin'
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 2
	printf '\0binary\377\n' | jq-put "$SERVER" "$HANDLE" -
	cmp "$D/b.result" <(printf '\0binary\377\n')
	wait_server_exit
	assert_equal "$status" 0
}

@test "jq-put of a missing FILE exits 8 and stores nothing" {
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
	run --separate-stderr -8 jq-put "$SERVER" "$HANDLE" "$D/missing"
	[[ $stderr == *"$D/missing"* ]]
	assert_file_not_exist "$D/a.result"
	run -8 jq-put "$SERVER" "$HANDLE" "$D"
	assert_file_not_exist "$D/a.result"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/a"
}

@test "jq-take -o into a missing directory exits 8 and costs no job" {
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	run --separate-stderr -8 jq-take -o "$D/nodir/in" "$SERVER"
	[[ $stderr == *"$D/nodir/in"* ]]
	run -0 jq-take -o "$D/in" "$SERVER"
	assert_handle 1
}

@test "jq-take -o replaces an existing file and leaves no temporary" {
	printf 'new data\n' >"$D/a"
	mkdir "$D/w"
	printf 'old contents, longer than the new\n' >"$D/w/in"
	start_server "$D/a"
	run -0 jq-take -o "$D/w/in" "$SERVER"
	cmp "$D/w/in" "$D/a"
	run ls -A "$D/w"
	assert_output in
}

@test "jq-take on a terminal explains a long wait: every job left is running elsewhere" {
	local h cmd
	printf 'x\n' >"$D/a"
	# it lingers: the last jq-take below must still find it, however loaded the machine
	start_server --linger 60 "$D/a"
	h=$(jq-take -o "$D/in1" "$SERVER")
	# a second worker finds the only job held (a lost handle looks just like this)
	cmd=$(printf '%q ' jq-take -o "$D/in2" "$SERVER")
	timeout -k 5 120 script -qefc "$cmd; echo \"rc=\$?\"" "$D/tty" </dev/null >/dev/null 2>&1 3>&- &
	JQ_PIDS+=("$!")
	local i
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		grep -q "waiting for a job: every job left is running" "$D/tty" 2>/dev/null && break
		sleep 0.05
	done
	grep -q "waiting for a job: every job left is running; one comes back when its worker delivers or fails it, or when its lease ends" "$D/tty"
	printf 'r\n' >"$D/r"
	run jq-put "$SERVER" "$h" "$D/r"
	assert_success
	# (anchored: script(1) writes a header naming the command, which holds "rc=" too)
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		grep -q "^rc=" "$D/tty" 2>/dev/null && break
		sleep 0.05
	done
	grep -q "^rc=3" "$D/tty"
	# not on a pipe: scripts see nothing new
	run --separate-stderr jq-take -o "$D/in3" "$SERVER"
	assert_equal "$status" 3
	assert_equal "$stderr" ""
}

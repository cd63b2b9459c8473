#!/usr/bin/env bats
# tests/promises.bats: promises of issue 9 that held only on the beaten path.
#   - The server proves itself: a client refuses, with status 10 and before it sends anything
#     about a job, a server that does not complete the proof (auth=none over TCP, a wrong or
#     missing MAC, another user's UNIX socket), unless told --no-auth or JQ_NO_AUTH=1.
#   - The journal stays parseable: an append the disk cannot take whole is cut back, so the next
#     start resumes with every acknowledged result.
#   - SIGHUP ends jq-serve as SIGTERM does.
# The fake servers are bash functions run by socat, one bash per connection; they log every line
# they receive to $F/log and hand out one job to whoever asks.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_tmpdir
	unset JQ_SERVER JQ_NO_AUTH
	D=$BATS_TEST_TMPDIR
	F=$D/fake
	mkdir -p "$F" "$D/in" "$D/out"
	printf 'job data\n' >"$D/in/a"
	export F D
}

teardown() {
	jq_teardown
	if [[ -n ${TMPFS:-} ]] && mountpoint -q "$TMPFS"; then
		umount "$TMPFS" || umount -l "$TMPFS"
	fi
}

# new_token FILE: write a fresh, valid token (64 hex digits) to FILE, mode 0600
new_token() {
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1")
}

# fake_server: one connection of a fake jq-serve on standard input and output.  It greets with
# $F/greeting, answers HELLO with $F/hello-reply (default OK 2), hands out a job to TAKE, and
# answers anything else OK.
fake_server() {
	local line data='job data'
	cat "$F/greeting"
	while IFS= read -r line; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$F/log"
		case $line in
		HELLO*) if [[ -e $F/hello-reply ]]; then cat "$F/hello-reply"; else printf 'OK 2\n'; fi ;;
		TAKE*)
			printf 'JOB 1 a size=%d attempt=1 lease=600 token=0badc0de000000010123456789abcdef\nDATA %d\n%s' \
				"${#data}" "${#data}" "$data"
			printf 'END %d f224454c\n' "${#data}"	# its CRC-32C
			;;
		QUIT) printf 'OK bye\n' && exit 0 ;;
		*) printf 'OK 1\n' ;;
		esac
	done
}
export -f fake_server

# fake_tcp GREETING: serve fake_server on a free TCP port of 127.0.0.1; FAKE is its address
fake_tcp() {
	printf '%s\n' "$1" >"$F/greeting"
	local try port i
	for ((try = 0; try < 20; try++)); do
		port=$(free_tcp_port)
		jq_bg socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" EXEC:'bash -c fake_server'
		for ((i = 0; i < 100; i++)); do
			# socat gone: the port was taken after all; try another
			_jq_exited "${JQ_PIDS[-1]}" && break
			if [[ -n $(ss -ltnH "sport = :$port") ]]; then
				FAKE=127.0.0.1:$port
				return 0
			fi
			sleep 0.05
		done
	done
	echo "fake_tcp: no free port" >&2
	return 1
}

# refused_all SERVER WHY: jq-take, jq-put, jq-stat and jq-run all refuse SERVER with status 10,
# saying WHY; the command never runs and the server hears nothing but what $F/log allows
refused_all() {
	local server=$1 why=$2
	run -10 jq-take -o "$D/taken" "$server"
	assert_output --partial "$why"
	assert_file_not_exists "$D/taken"
	printf 'result\n' >"$D/result"
	run -10 jq-put "$server" "1:0badc0de000000010123456789abcdef" "$D/result"
	assert_output --partial "$why"
	run -10 jq-stat "$server"
	assert_output --partial "$why"
	refute_output --partial 'jobs'
	run -10 timeout -k 5 60 jq-run --reconnect 0 --tmpdir "$D" "$server" -- \
		sh -c 'touch "$D/ran"; cat'
	assert_output --partial "$why"
	assert_file_not_exists "$D/ran"
	if [[ -e $F/log ]]; then
		run grep -Ev '^HELLO ' "$F/log"
		assert_output ''
	fi
}

@test "a client holding a token refuses a TCP server that greets auth=none: status 10, nothing sent" {
	new_token "$JQ_TOKEN_FILE"
	fake_tcp 'JQ 2 fake/0 auth=none'
	refused_all "$FAKE" '--no-auth or JQ_NO_AUTH=1 talks to it anyway'
	# not even HELLO went out
	assert_file_not_exists "$F/log"
	# a greeting without any auth= is no better; nor is a token-less client
	fake_tcp 'JQ 2 fake/0'
	refused_all "$FAKE" 'does not prove that it holds the token'
	JQ_TOKEN_FILE=$D/nowhere refused_all "$FAKE" 'does not prove that it holds the token'
	assert_file_not_exists "$F/log"
}

@test "a TCP server that greets hmac-sha256 but answers a wrong MAC, or none, is refused: nothing about a job is sent" {
	new_token "$JQ_TOKEN_FILE"
	local sn
	sn=$(printf '%064d' 0)
	fake_tcp "JQ 2 fake/0 auth=hmac-sha256 nonce=$sn"
	printf 'OK 2 auth=%064d\n' 1 >"$F/hello-reply"
	refused_all "$FAKE" 'did not prove it holds our token'
	# the opt-in does not excuse a wrong proof
	run -10 jq-stat --no-auth "$FAKE"
	printf 'OK 2\n' >"$F/hello-reply"
	refused_all "$FAKE" 'did not prove it holds our token'
	run -10 env JQ_NO_AUTH=1 jq-take -o "$D/taken" "$FAKE"
	# only the HELLOs carrying our own proof went out
	run grep -c '^HELLO 2 name=[^ ]* auth=[0-9a-f]\{64\}:[0-9a-f]\{64\}$' "$F/log"
	assert_output "$(wc -l <"$F/log")"
}

@test "--no-auth or JQ_NO_AUTH=1 is the only way to talk to jq-serve --no-auth, and the refusal names them" {
	new_token "$JQ_TOKEN_FILE"
	printf 'b data\n' >"$D/in/b"
	start_server --no-auth -o "$D/out" "$D/in/a" "$D/in/b"
	run -10 jq-stat "$SERVER"
	assert_output --partial "$SERVER: the server does not prove that it holds the token (auth=none)"
	assert_output --partial '--no-auth or JQ_NO_AUTH=1'
	run -0 jq-stat --no-auth "$SERVER"
	assert_line --regexp '^jobs +2 total, 2 waiting'
	run -0 env JQ_NO_AUTH=1 jq-stat "$SERVER"
	# JQ_NO_AUTH=0 or empty is no opt-in
	run -10 env JQ_NO_AUTH=0 jq-stat "$SERVER"
	run -10 env JQ_NO_AUTH= jq-stat "$SERVER"
	run -0 jq-take --no-auth -o "$D/in.1" "$SERVER"
	assert_output --regexp '^1:[0-9a-f]{32}$'
	run -0 env JQ_NO_AUTH=1 jq-put "$SERVER" "$output" "$D/in.1"
	run -0 timeout -k 5 60 jq-run --no-auth --tmpdir "$D" "$SERVER" -- tr a-z A-Z
	wait_server_exit 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/a.result")" 'job data'
	assert_equal "$(cat "$D/out/b.result")" 'B DATA'
}

@test "UNIX socket: a server run by another user is refused by SO_PEERCRED; --no-auth lets it through" {
	((EUID == 0)) || skip "needs root to run a server as another user (CI runs as root)"
	command -v setpriv socat
	new_token "$JQ_TOKEN_FILE"
	# a directory that user 65534 may write its socket and log into, but does not own alone (like
	# /tmp): a root client trusts a socket of another user only in that user's own directory
	local dir
	dir=$(jq_tmpdir)
	chmod 1777 "$dir"
	F=$dir/fake
	mkdir "$F"
	chown 65534:65534 "$F"
	# what a real jq-serve says on its UNIX socket: "you are my own user"
	printf 'JQ 2 fake/0 auth=peer\n' >"$F/greeting"
	jq_bg setpriv --reuid=65534 --regid=65534 --clear-groups \
		socat "UNIX-LISTEN:$dir/sock,fork" EXEC:'bash -c fake_server'
	local i
	for ((i = 0; i < 400; i++)); do
		[[ -S $dir/sock ]] && break
		sleep 0.05
	done
	refused_all "unix:$dir/sock" 'the server runs as uid 65534, neither our own (uid 0) nor root'
	run -10 jq-stat "unix:$dir/sock"
	assert_output --partial '--no-auth or JQ_NO_AUTH=1'
	assert_file_not_exists "$F/log"
	# told so, the client talks to it
	run -0 jq-take --no-auth -o "$D/taken" "unix:$dir/sock"
	assert_equal "$(cat "$D/taken")" 'job data'
	# our own user's server (and root's) is proven by SO_PEERCRED, even without a token
	start_server_unix "$D/in/a"
	run -0 env JQ_TOKEN_FILE="$D/nowhere" jq-stat "$SERVER"
}

@test "UNIX socket: root trusts another user's server only in that user's own directory" {
	((EUID == 0)) || skip "needs root to run a server as another user (CI runs as root)"
	command -v setpriv
	jq_tmpdir
	local d=$JQ_TMP
	chmod 711 "$d"
	mkdir "$d/own"
	cp "$(command -v jq-serve)" "$d/own/jq-serve"
	printf 'x\n' >"$d/own/a"
	chown -R 65534:65534 "$d/own"
	chmod 755 "$d/own"
	# like systemd's RuntimeDirectory of a service run as that user: its own, mode 0755
	jq_bg setpriv --reuid=65534 --regid=65534 --clear-groups \
		env HOME="$d/own" JQ_STATE_DIR="$d/own/state" JQ_TOKEN_FILE="$d/own/token" \
		"$d/own/jq-serve" --addr-file "$d/own/addr" -l "unix:$d/own/sock" "$d/own/a"
	wait_for_file "$d/own/addr"
	run -0 env JQ_TOKEN_FILE="$D/nowhere" jq-stat "unix:$d/own/sock"
	# the same socket reached through a directory others may write is not trusted
	chmod 777 "$d/own"
	run -10 env JQ_TOKEN_FILE="$D/nowhere" jq-stat "unix:$d/own/sock"
	assert_output --partial 'the server runs as uid 65534, neither our own (uid 0) nor root'
}

# journal_file: the path of the one journal in $JQ_STATE_DIR
journal_file() {
	local j
	for j in "$JQ_STATE_DIR"/journal-*; do
		[[ $j == *.new ]] || printf '%s\n' "$j"
	done
}

# assert_whole_lines FILE: FILE is empty or ends with LF
assert_whole_lines() {
	[[ ! -s $1 || $(tail -c 1 "$1" | od -An -c) == *'\n'* ]] || {
		echo "$1 ends with half a record:" >&2
		tail -c 200 "$1" >&2
		return 1
	}
}

# resume_check N: restart jq-serve over JOBS (after the last one was stopped): it resumes with N
# jobs done and hands out only the others, and in the end every result is its job's data
resume_check() {
	start_server -v -o "$D/out" "${JOBS[@]}"
	grep -q "resuming from .*: $1 done, 0 failed" "$SERVER_LOG"
	local id n=0 f
	while id=$(jq-take -o "$D/job" "$SERVER"); do
		run -0 jq-put "$SERVER" "$id" "$D/job"
		n=$((n + 1))
	done
	assert_equal "$n" "$((${#JOBS[@]} - $1))"
	wait_server_exit 30
	assert_equal "$status" 0
	for f in "${JOBS[@]}"; do
		cmp "$f" "$D/out/${f##*/}.result"
	done
}

@test "journal: an append torn by ENOSPC (the JQ_TEST_JOURNAL_TEAR seam) is cut back; a restart keeps every acknowledged result" {
	export JQ_STATE_DIR=$D/state
	local i
	for i in 1 2 3 4; do printf 'data %d\n' "$i" >"$D/in/f$i"; done
	JOBS=("$D"/in/f1 "$D"/in/f2 "$D"/in/f3 "$D"/in/f4)
	JQ_TEST_JOURNAL_TEAR=2 start_server -v -o "$D/out" "${JOBS[@]}"
	run -0 jq-put "$SERVER" "$(old_handle 1 "$D/in/f1")" "$D/in/f1"
	run -7 jq-put "$SERVER" "$(old_handle 2 "$D/in/f2")" "$D/in/f2"
	assert_output --partial 'No space left on device'
	assert_whole_lines "$(journal_file)"
	run -0 jq-put "$SERVER" "$(old_handle 2 "$D/in/f2")" "$D/in/f2"
	run -0 jq-put "$SERVER" "$(old_handle 3 "$D/in/f3")" "$D/in/f3"
	assert_whole_lines "$(journal_file)"
	# a crash, with job 4 still to run
	kill -KILL "$(pgrep -P "$SERVER_PID" -x jq-serve)"
	wait_server_exit 30
	resume_check 3
}

@test "journal: a state directory that fills up mid-record (tmpfs) leaves whole records; a restart keeps every acknowledged result" {
	TMPFS=$D/state
	mkdir -p "$TMPFS"
	if ! mount -t tmpfs -o size=64k tmpfs "$TMPFS" 2>/dev/null; then
		TMPFS=
		skip "needs root to mount tmpfs"
	fi
	export JQ_STATE_DIR=$TMPFS/jq
	# names of about 750 bytes make records of about 770: the sixth crosses the first page
	local long i
	long=$(printf 'd%.0s' {1..240})
	mkdir -p "$D/in/$long/$long/$long"
	JOBS=()
	for i in 1 2 3 4 5 6 7 8 9; do
		printf '%d\n' "$i" >"$D/in/$long/$long/$long/f$i"
		JOBS+=("$D/in/$long/$long/$long/f$i")
	done
	start_server -v -o "$D/out" "${JOBS[@]}"
	run -0 jq-put "$SERVER" "$(old_handle 1 "${JOBS[0]}")" "${JOBS[0]}"
	# fill the filesystem to the last page
	head -c 1M /dev/zero >"$TMPFS/filler" 2>/dev/null || true
	local ok=(1) failed=()
	for i in 2 3 4 5 6 7 8; do
		run jq-put "$SERVER" "$(old_handle "$i" "${JOBS[i - 1]}")" "${JOBS[i - 1]}"
		case $status in
		0) ok+=("$i") ;;
		7) failed+=("$i") ;;
		*) fail "jq-put $i: status $status: $output" ;;
		esac
		assert_whole_lines "$(journal_file)"
	done
	((${#failed[@]} > 0)) || fail "the journal never filled up"
	grep -q 'No space left on device' "$SERVER_LOG"
	# room again: the failed ones are put again, after whole records
	rm "$TMPFS/filler"
	for i in "${failed[@]}"; do
		run -0 jq-put "$SERVER" "$(old_handle "$i" "${JOBS[i - 1]}")" "${JOBS[i - 1]}"
	done
	assert_whole_lines "$(journal_file)"
	# a crash, with job 9 still to run; every acknowledged result (jobs 1 to 8) is kept
	kill -KILL "$(pgrep -P "$SERVER_PID" -x jq-serve)"
	wait_server_exit 30
	resume_check 8
}

# hup_or_term SIGNAL: start a server on a UNIX socket with one of two jobs done, send SIGNAL to
# jq-serve, and check that it stops with status 9, its summary, the socket removed and the
# journal kept
hup_or_term() {
	printf 'b\n' >"$D/in/b"
	JOBS=("$D/in/a" "$D/in/b")
	export JQ_STATE_DIR=$D/state
	start_server_unix -o "$D/out" "${JOBS[@]}"
	local sock=${SERVER#unix:}
	run -0 jq-put "$SERVER" "$(old_handle 1 "$D/in/a")" "$D/in/a"
	kill "-$1" "$(pgrep -P "$SERVER_PID" -x jq-serve)"
	wait_server_exit 30
	assert_equal "$status" 9
	run cat "$SERVER_LOG"
	assert_line --regexp "^jq-serve: stopped by signal [0-9]+: 1 of 2 jobs finished$"
	assert_file_not_exists "$sock"
	resume_check 1
}

@test "SIGTERM stops jq-serve with status 9 and its summary, removes the UNIX socket, keeps the journal" {
	hup_or_term TERM
}

@test "SIGHUP does exactly what SIGTERM does" {
	hup_or_term HUP
}

@test "SIGHUP ignored at start (nohup) stays ignored" {
	export JQ_STATE_DIR=$D/state
	local sock=$JQ_TMP/sock
	(
		trap '' HUP
		exec jq-serve -l "unix:$sock" --addr-file "$JQ_TMP/addr" -o "$D/out" "$D/in/a" \
			>"$JQ_TMP/server.log" 2>&1 3>&-
	) &
	SERVER_PID=$!
	JQ_PIDS+=("$SERVER_PID")
	wait_for_file "$JQ_TMP/addr"
	kill -HUP "$SERVER_PID"
	run -0 jq-stat "unix:$sock"
	run -0 jq-put "unix:$sock" "$(old_handle 1 "$D/in/a")" "$D/in/a"
	wait_server_exit 30
	assert_equal "$status" 0
}

#!/usr/bin/env bats
# The wire protocol spoken by hand (bash /dev/tcp, socat for UNIX sockets):
# greeting and HELLO, errors that keep the stream in sync, limits, payload
# framing and checksums, pipelining, STAT.  See man/jq-protocol.7.

# shellcheck disable=SC2154 # $line is set by recv, in test_helper/wire.bash
bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup bytes
}

# open_conn: connect fd $conn to the TCP server $SERVER; the greeting goes to $greeting
open_conn() {
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
}

# hello: open_conn, then HELLO 2 (authenticated when the server asks) and its OK
hello() {
	open_conn
	sendl "$(hello_line 2 name=by-hand)"
	expect 'OK 2*'
}

# expect_eof: the server closed the connection (no more bytes), within 20 s
expect_eof() {
	local rc=0 rest
	IFS= read -t 20 -r rest <&"$conn" || rc=$?
	if ((rc != 1)) || [[ -n $rest ]]; then
		echo "expected EOF, got read status $rc and '$rest'" >&2
		return 1
	fi
}

# stat_reply [GLOB]: send STAT, check its first line against "STAT GLOB", keep
# it in $stat and read the rest of the reply up to its END line
stat_reply() {
	sendl 'STAT'
	expect "STAT ${1:-*}" || return 1
	stat=$line
	while recv; do
		[[ $line == END ]] && return 0
	done
	return 1
}

# recv_payload: read a payload (DATA chunks and END) into $data
recv_payload() {
	local chunk n
	data=
	while recv; do
		case $line in
		'DATA '*)
			n=${line#DATA }
			IFS= read -t 20 -r -N "$n" chunk <&"$conn" || return 1
			((${#chunk} == n)) || return 1
			data+=$chunk
			;;
		'END '*)
			[[ $line == "END ${#data} $(printf '%s' "$data" | crc32c)" ]] || {
				echo "bad END line '$line' for ${#data} bytes" >&2
				return 1
			}
			return 0
			;;
		*)
			echo "unexpected line in payload: '$line'" >&2
			return 1
			;;
		esac
	done
	return 1
}

# two_jobs: serve $D/a and $D/b (4 bytes each, no NUL) on TCP and say hello
two_jobs() {
	printf 'aaa\n' >"$D/a"
	printf 'bbb\n' >"$D/b"
	start_server "$@" "$D/a" "$D/b"
	hello
}

@test "the server greets with its protocol version and software version" {
	two_jobs
	[[ $greeting == 'JQ 2 jq-serve/0.1.0'* ]]
}

@test "HELLO picks the lower version; a version below 2 is refused and closed" {
	two_jobs
	sendl "$(hello_line 7)"
	# second HELLO on this connection: refused, still in sync
	expect 'ERR HELLO*'
	open_conn
	sendl "$(hello_line 7 name=future future=1)"
	expect 'OK 2*'
	open_conn
	sendl "$(hello_line 0)"
	expect 'ERR VERSION*'
	expect_eof
	# version 1 had no attempt tokens: refused too
	open_conn
	sendl "$(hello_line 1)"
	expect 'ERR VERSION*'
	expect_eof
}

@test "a request before HELLO gets ERR HELLO, and HELLO still works after it" {
	two_jobs --no-auth
	open_conn
	sendl 'TAKE'
	expect 'ERR HELLO*'
	sendl 'STAT'
	expect 'ERR HELLO*'
	sendl 'HELLO 2'
	expect 'OK 2'
	stat_reply '*'
}

@test "QUIT is answered OK bye and the connection closed, even before HELLO" {
	two_jobs --no-auth
	sendl 'QUIT'
	expect 'OK bye'
	expect_eof
	open_conn
	sendl 'QUIT'
	expect 'OK bye'
	expect_eof
}

@test "an unknown verb gets ERR PROTO and the next request still works" {
	two_jobs
	sendl 'FROB now'
	expect 'ERR PROTO *'
	sendl 'stat'
	expect 'ERR PROTO *'
	# a malformed PUT still has its payload skipped before the error
	sendl 'PUT'
	send $'DATA 5\nSTAT\nEND 5 '"$(printf 'STAT\n' | crc32c)"$'\n'
	expect 'ERR PROTO *'
	sendl 'TAKE notkeyvalue'
	expect 'ERR PROTO *'
	stat_reply 'total=2 *'
}

@test "an over-long line gets ERR TOOLONG, its tail is never run, and the stream stays in sync" {
	two_jobs
	# 16384 bytes before the LF, the last four spelling QUIT: if the server
	# resumed parsing in the middle of the line it would say "OK bye"
	printf -v pad '%*s' 16380 ''
	send "${pad// /A}QUIT"$'\n'
	expect 'ERR TOOLONG*'
	stat_reply 'total=2 *'
	# far longer than any buffer: 1 MiB
	{ head -c $((1 << 20)) /dev/zero | tr '\0' B; echo; } >&"$conn"
	expect 'ERR TOOLONG*'
	stat_reply 'total=2 *'
}

@test "a line of exactly the limit (16384 bytes with its LF) is accepted" {
	two_jobs
	# STAT ignores key=value words it does not know
	printf -v pad '%*s' $((16383 - 7)) ''
	send "STAT x=${pad// /y}"$'\n'
	expect 'STAT total=2 *'
	while recv && [[ $line != END ]]; do :; done
	printf -v pad '%*s' $((16384 - 7)) ''
	send "STAT x=${pad// /y}"$'\n'
	expect 'ERR TOOLONG*'
	stat_reply 'total=2 *'
}

@test "lines may end in CR LF" {
	two_jobs
	send $'STAT\r\n'
	expect 'STAT total=2 *'
	while recv && [[ $line != END ]]; do :; done
	send $'TAKE\r\n'
	expect 'JOB 1 *'
}

@test "STAT typed by hand: counts, worker lines, the queue line, END" {
	two_jobs
	# a connection is a worker once it has sent TAKE
	sendl 'TAKE hold=conn'
	expect 'JOB 1 *'
	recv_payload
	sendl 'STAT'
	expect 'STAT *'
	stat=$line
	[[ " $stat " == *' total=2 '* ]]
	[[ " $stat " == *' waiting=1 '* ]]
	[[ " $stat " == *' running=1 '* ]]
	[[ " $stat " == *' done=0 '* ]]
	[[ " $stat " == *' failed=0 '* ]]
	[[ " $stat " == *' failed_listed=0 '* ]]
	[[ " $stat " == *' version=0.1.0 '* ]]
	[[ " $stat " == *' protocol=2 '* ]]
	[[ $stat =~ \ workers=([0-9]+) ]]
	n=${BASH_REMATCH[1]}
	((n >= 1))
	found=0
	for ((i = 0; i < n; i++)); do
		expect 'WORKER *'
		[[ $line == 'WORKER by-hand peer=127.0.0.1:'*' running=1 done=0 failed=0'* ]] && found=1
	done
	((found))
	expect 'QUEUE default total=2 waiting=1 running=1 done=0 failed=0 blocked=0'
	expect 'END'
}

@test "TAKE sends the job with a percent-encoded name and a checked payload" {
	printf 'one\ntwo\n' >"$D/a b%.wav"
	start_server "$D/a b%.wav"
	hello
	sendl 'TAKE'
	expect 'JOB 1 * size=8 attempt=1 lease=* token=*'
	[[ $line == 'JOB 1 '*'a%20b%25.wav size='* ]]
	[[ $line =~ \ token=[0-9a-f]{32}$ ]]
	recv_payload
	assert_equal "$data" $'one\ntwo\n'
}

@test "a PUT with a bad CRC gets ERR CHECKSUM and stores nothing" {
	two_jobs
	take_token
	sendl "PUT 1 token=$token"
	send $'DATA 3\nabcEND 3 00000000\n'
	expect 'ERR CHECKSUM*'
	assert_file_not_exist "$D/a.result"
	# a wrong total is a checksum error too
	sendl "PUT 1 token=$token"
	send $'DATA 3\nabc'
	send "END 4 $(printf abc | crc32c)"$'\n'
	expect 'ERR CHECKSUM*'
	assert_file_not_exist "$D/a.result"
	# still in sync, and the job still takes a good result
	sendl "PUT 1 token=$token"
	payload abc >&"$conn"
	expect 'OK 1'
	assert_equal "$(cat "$D/a.result")" abc
	run ls -A "$D"
	assert_output "$(printf '%s\n' a a.result b)"
}

@test "PUT then TAKE in one write are answered in order: one round trip per job" {
	two_jobs
	sendl 'TAKE'
	expect 'JOB 1 *'
	job_token
	recv_payload
	assert_equal "$data" $'aaa\n'
	{
		printf 'PUT 1 token=%s\n' "$token"
		payload 'result one'
		printf 'TAKE\n'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect 'OK 1'
	expect 'JOB 2 *'
	job_token
	recv_payload
	assert_equal "$data" $'bbb\n'
	# three requests in one write, three replies in order
	{
		printf 'STAT\nPUT 2 token=%s\n' "$token"
		payload 'result two'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect 'STAT *'
	while recv && [[ $line != END ]]; do :; done
	[[ $line == END ]]
	expect 'OK 2'
	assert_equal "$(cat "$D/a.result")" 'result one'
	assert_equal "$(cat "$D/b.result")" 'result two'
}

@test "a payload that looks like protocol lines is stored as data" {
	two_jobs
	body=$'STAT\nQUIT\nEND 0 00000000\nDATA 5\n'
	take_token
	sendl "PUT 1 token=$token"
	payload "$body" >&"$conn"
	expect 'OK 1'
	cmp "$D/a.result" <(printf '%s' "$body")
	stat_reply '*'
}

@test "a payload in several chunks, empty ones included, is stored whole" {
	two_jobs
	take_token
	sendl "PUT 1 token=$token"
	send $'DATA 0\nDATA 2\nabDATA 0\nDATA 1\nc'
	send "END 3 $(printf abc | crc32c)"$'\n'
	expect 'OK 1'
	assert_equal "$(cat "$D/a.result")" abc
	# an empty payload: END alone
	take_token
	sendl "PUT 2 token=$token" 'END 0 00000000'
	expect 'OK 2'
	assert_file_exist "$D/b.result"
	assert_file_empty "$D/b.result"
}

@test "a 1.5 MiB result in odd-sized DATA chunks, sent in one write with the next request, is stored whole" {
	# more than the server's input holds at once (1 MiB), chunks that end
	# and begin inside its reads of the socket, a request right behind
	two_jobs
	take_token
	python3 - "$D/big" "$D/wire" "$token" <<'PY'
import random, sys
data = random.Random(12).randbytes(1536 * 1024 + 7)
t = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    t.append(c)
c = 0xffffffff
for b in data:
    c = t[(c ^ b) & 0xff] ^ (c >> 8)
open(sys.argv[1], "wb").write(data)
w = open(sys.argv[2], "wb")
w.write(b"PUT 1 token=%s\n" % sys.argv[3].encode())
off = 0
for n in [1, 4095, 300001, 0, 65536, 700000, 3]:
    w.write(b"DATA %d\n" % n + data[off:off + n])
    off += n
w.write(b"DATA %d\n" % (len(data) - off) + data[off:])
w.write(b"END %d %08x\nSTAT\n" % (len(data), c ^ 0xffffffff))
PY
	cat "$D/wire" >&"$conn"
	expect 'OK 1'
	expect 'STAT *'
	cmp "$D/big" "$D/a.result"
}

@test "ABORT abandons a payload: ERR ABORTED, nothing stored, the job unchanged" {
	two_jobs
	take_token
	sendl "PUT 1 token=$token"
	send $'DATA 3\nabcABORT\n'
	expect 'ERR ABORTED*'
	assert_file_not_exist "$D/a.result"
	stat_reply '*'
	[[ " $stat " == *' waiting=1 '* && " $stat " == *' running=1 '* && " $stat " == *' done=0 '* ]]
	sendl "PUT 1 token=$token"
	payload 'xyz' >&"$conn"
	expect 'OK 1'
	assert_equal "$(cat "$D/a.result")" xyz
}

@test "a second PUT gets ERR DONE after its payload is skipped; the first result stays" {
	two_jobs
	take_token
	sendl "PUT 1 token=$token"
	payload first >&"$conn"
	expect 'OK 1'
	sendl "PUT 1 token=$token"
	# the refused payload holds a request line: it must be skipped, not run
	payload $'QUIT\n' >&"$conn"
	expect 'ERR DONE*'
	sendl "FAIL 1 token=$token"
	payload 'late failure' >&"$conn"
	expect 'ERR DONE*'
	stat_reply '*'
	assert_equal "$(cat "$D/a.result")" first
}

@test "a PUT for an unknown job gets ERR NOSUCHJOB after its payload is skipped" {
	two_jobs
	# a token of this server's own hand-out: the id alone is unknown
	take_token
	sendl "PUT 99 token=$token"
	payload $'QUIT\n' >&"$conn"
	expect 'ERR NOSUCHJOB*'
	stat_reply 'total=2 *'
	# malformed ids: whatever the error, the payload is skipped, never run
	for id in 0 abc -1 18446744073709551616; do
		sendl "PUT $id token=$token"
		payload $'STAT\n' >&"$conn"
		expect 'ERR *'
		sendl 'QUIT'
		expect 'OK bye'
		hello
	done
}

@test "a result over --max-result gets ERR TOOBIG, skipped byte for byte" {
	two_jobs --max-result 4
	take_token
	sendl "PUT 1 token=$token"
	payload $'12\nQUIT\n' >&"$conn"
	expect 'ERR TOOBIG*'
	stat_reply '*'
	sendl "PUT 1 token=$token"
	payload 1234 >&"$conn"
	expect 'OK 1'
	assert_equal "$(cat "$D/a.result")" 1234
}

@test "broken framing inside a payload gets ERR FRAMING and the connection closed" {
	two_jobs
	take_token
	sendl "PUT 1 token=$token" 'STAT'
	expect 'ERR FRAMING*'
	expect_eof
	assert_file_not_exist "$D/a.result"
	# a bad DATA length closes too
	hello
	sendl "PUT 1 token=$token" 'DATA -1'
	expect 'ERR FRAMING*'
	expect_eof
	# the server is unharmed
	hello
	stat_reply 'total=2 *'
}

@test "FAIL with a message marks the job failed" {
	two_jobs
	take_token
	sendl "FAIL 1 token=$token exit=3"
	payload 'it broke' >&"$conn"
	expect 'OK 1 done=0'
	sendl 'STAT'
	expect 'STAT *'
	[[ " $line " == *' failed=1 '* && " $line " == *' failed_listed=1 '* ]]
	failed=()
	while recv && [[ $line != END ]]; do
		[[ $line == FAILED* ]] && failed+=("$line")
	done
	assert_equal "${#failed[@]}" 1
	[[ ${failed[0]} == 'FAILED 1 '*' status=exit:3 msg=it%20broke'* ]]
}

@test "FAIL's OK tells done=, the jobs done on the server, whether the job runs again or not" {
	printf 'aaa\n' >"$D/a"
	printf 'bbb\n' >"$D/b"
	printf 'ccc\n' >"$D/c"
	start_server --retries 1 "$D/a" "$D/b" "$D/c"
	hello
	take_token
	sendl "FAIL 1 token=$token exit=3"
	payload 'first try' >&"$conn"
	expect 'OK 1 done=0'
	take_token
	assert_equal "$job" 2
	sendl "PUT 2 token=$token"
	payload 'two' >&"$conn"
	expect 'OK 2'
	take_token
	assert_equal "$job" 3
	sendl "PUT 3 token=$token"
	payload 'three' >&"$conn"
	expect 'OK 3'
	# job 1 once more (by the same worker: nothing else waits), failed for good now
	take_token
	assert_equal "$job" 1
	sendl "FAIL 1 token=$token exit=3"
	payload 'second try' >&"$conn"
	expect 'OK 1 done=2'
	wait_server_exit
	assert_equal "$status" 1
}

@test "a RETRY sent with the last result cannot revive a run that has just ended" {
	two_jobs --retries 0
	take_token
	sendl "FAIL 1 token=$token exit=3"
	payload 'it broke' >&"$conn"
	expect 'OK 1 done=0'
	take_token
	# the last PUT and a RETRY of the failed job arrive in one write: the
	# run ended with the PUT, so the RETRY is refused, not obeyed
	{
		printf 'PUT 2 token=%s\n' "$token"
		payload 'result two'
		printf 'RETRY 1\n'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect 'OK 2'
	expect 'ERR NOTHELD job 1 cannot run again: the run has ended'
	wait_server_exit
	assert_equal "$status" 1
	assert_equal "$(cat "$D/b.result")" 'result two'
	assert_not_exists "$D/a.result"
}

@test "RELEASE gives a held job back to the front of the queue; TOUCH renews only held jobs" {
	two_jobs
	# a waiting job is held by nobody: a token of an earlier server for its input is refused
	sendl "RELEASE 1 token=$(old_token "$D/a")"
	expect 'ERR NOTHELD*'
	sendl "TOUCH 1 token=$(old_token "$D/a")"
	expect 'ERR NOTHELD*'
	sendl 'TAKE'
	expect 'JOB 1 *'
	job_token
	recv_payload
	sendl "TOUCH 1 token=$token"
	expect 'OK 1*'
	sendl "RELEASE 1 token=$token"
	expect 'OK 1'
	# released: the attempt is over, its token holds nothing any more
	sendl "TOUCH 1 token=$token"
	expect 'ERR NOTHELD*'
	sendl 'TAKE'
	expect 'JOB 1 * attempt=2*'
	recv_payload
	assert_equal "$data" $'aaa\n'
	sendl "RELEASE 99 token=$token"
	expect 'ERR NO*'
}

@test "TAKE wait=0 while every job is held answers NOJOB timeout" {
	printf 'x\n' >"$D/a"
	start_server "$D/a"
	hello
	sendl 'TAKE'
	expect 'JOB 1 *'
	recv_payload
	sendl 'TAKE wait=0'
	expect 'NOJOB timeout'
	sendl 'TAKE match=nothing%2A'
	expect 'NOJOB finished'
}

@test "the protocol works by hand over a UNIX socket (socat)" {
	command -v socat
	printf 'x\n' >"$D/a"
	start_server_unix "$D/a"
	run -0 timeout 20 socat -t 10 - "UNIX-CONNECT:${SERVER#unix:}" <<<$'HELLO 2\nSTAT\nQUIT'
	# our own uid on the UNIX socket: trusted without the token (SO_PEERCRED)
	assert_line --index 0 --regexp '^JQ 2 jq-serve/.* auth=peer$'
	assert_line --index 1 'OK 2'
	assert_line --index 2 --regexp '^STAT total=1 '
	assert_equal "${lines[-1]}" 'OK bye'
}

#!/usr/bin/env bats
# tests/confine.bats: jq-serve writes only inside its result locations and its state directory
# (issue 5, "Files").  A symlink planted at a result path, at the name of a temporary file or in
# place of the result directory is never followed; --result templates that would leave the result
# directory are refused at start; files and the state directory get safe modes; names that clients
# send (worker names, match= globs, job ids, FAIL messages) never become paths and never break the
# lines of --joblog or jq-stat.
#
# Every test works in its own directory $D: inputs in $D/in, results in $D/in or $D/out, and an
# $D/outside directory that holds a file "target" the server must never touch; "nothing escaped"
# is checked by comparing a listing of $D (names, types, sizes, modes, link targets) before and
# after.  Nothing depends on timing: a test acts between two steps of a job by taking the job
# with jq-take and delivering it with jq-put, or by speaking the protocol by hand.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup root sock bytes
	mkdir -p "$D/in" "$D/out" "$D/outside" "$D/w"
	printf 'precious\n' >"$D/outside/target"
	export JQ_STATE_DIR=$D/state
}

# snapshot: print every path under $D with its type, size, mode and link target (the state
# directory and the helpers' own files left out)
snapshot() {
	find "$D" \( -path "$D/state" -o -path "$D/token" -o -name '.jq-cleanup' -o \
		-name 'separate-stderr-*' \) -prune -o -type d -printf '%P/ %m\n' -o \
		-printf '%P %y %s %m %l\n' | LC_ALL=C sort
}

# assert_target_intact: the file outside every result location still holds what it held
assert_target_intact() {
	assert_file_exists "$D/outside/target"
	run cat "$D/outside/target"
	assert_output 'precious'
	[[ ! -L $D/outside/target ]]
}

# serve ARG...: start jq-serve for a fresh run
serve() {
	start_server --fresh "$@"
}

# serve_pid: the pid of jq-serve itself (start_server's $SERVER_PID is its watchdog, whose only
# child it is); temporary result files are named after it
serve_pid() {
	local kids
	kids=$(pgrep -P "$SERVER_PID") || return 1
	printf '%s\n' "${kids%%$'\n'*}"
}

# take NAME: take a job with jq-take into $D/w/NAME; its id goes to $ID
take() {
	run --separate-stderr jq-take -o "$D/w/$1" "$SERVER"
	assert_success
	ID=$output
}

# put ID TEXT: deliver TEXT as the result of job ID with jq-put (bats' run: $status, $stderr)
put() {
	local f
	f=$(mktemp "$D/w/put.XXXXXX")
	printf '%s' "$2" >"$f"
	run --separate-stderr jq-put "$SERVER" "$1" "$f"
	rm -f "$f"
}

# open_conn: connect fd $conn to the TCP server $SERVER; the greeting goes to $greeting
open_conn() {
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
}

# hello [ENCODED-NAME]: open_conn and say HELLO, authenticating with $JQ_TOKEN_FILE when the
# greeting asks for it (see /tmp/jq-design/ISSUE5.md: HMAC-SHA-256 over "jq-auth-1 client SN CN")
hello() {
	local sn cn mac auth=
	open_conn
	if [[ $greeting == *auth=hmac-sha256* ]]; then
		sn=${greeting##*nonce=}
		sn=${sn%% *}
		cn=$(openssl rand -hex 32)
		mac=$(printf 'jq-auth-1 client %s %s' "$sn" "$cn" |
			openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(cat "$JQ_TOKEN_FILE")" -r |
			cut -d' ' -f1)
		auth=" auth=$cn:$mac"
	fi
	sendl "HELLO 2${1:+ name=$1}$auth"
	expect 'OK 2*'
}

# recv_payload: read a payload (DATA chunks and END) into $data
recv_payload() {
	local chunk n
	data=
	while recv; do
		case $line in
		DATA\ *)
			n=${line#DATA }
			chunk=
			if ((n > 0)); then IFS= read -t 20 -r -N "$n" chunk <&"$conn" || return 1; fi
			data+=$chunk
			;;
		END\ *) return 0 ;;
		*)
			echo "recv_payload: unexpected '$line'" >&2
			return 1
			;;
		esac
	done
	return 1
}

# no_control FILE: FILE holds no control byte but LF (no tab, CR, ESC, BEL...)
no_control() {
	if LC_ALL=C grep -n $'[\x01-\x09\x0b-\x1f\x7f]' "$1" >&2; then
		echo "no_control: $1 holds control bytes (lines above)" >&2
		return 1
	fi
}

@test "a symlink planted at a result path before the run is replaced, never followed" {
	printf 'a\n' >"$D/in/a.dat"
	printf 'b\n' >"$D/in/b.dat"
	ln -s "$D/outside/target" "$D/in/a.dat.result"
	ln -s "$D/outside/new" "$D/in/b.dat.result"    # dangling: must not be created
	ln -s "$D/outside" "$D/in/c.dat.result" # a directory: nothing goes in it
	printf 'c\n' >"$D/in/c.dat"
	serve "$D/in/a.dat" "$D/in/b.dat" "$D/in/c.dat"
	for n in 1 2 3; do
		take job$n
		put "$ID" "result of $(cat "$D/w/job$n")"
		assert_success
	done
	wait_server_exit
	assert_equal "$status" 0
	assert_target_intact
	assert_file_not_exists "$D/outside/new"
	run ls -A "$D/outside"
	assert_output 'target'
	for n in a b c; do
		[[ ! -L $D/in/$n.dat.result && -f $D/in/$n.dat.result ]]
		run cat "$D/in/$n.dat.result"
		assert_output "result of $n"
	done
}

@test "a symlink planted at a result path between take and put is replaced, never followed" {
	printf 'a\n' >"$D/in/a.dat"
	serve -o "$D/out" "$D/in/a.dat"
	take a
	ln -s "$D/outside/target" "$D/out/a.dat.result"
	put "$ID" 'the result'
	assert_success
	wait_server_exit
	assert_target_intact
	[[ ! -L $D/out/a.dat.result ]]
	run cat "$D/out/a.dat.result"
	assert_output 'the result'
}

@test "a symlink at the name of the next temporary file is skipped, never followed" {
	local pid
	printf 'a\n' >"$D/in/a.dat"
	serve -o "$D/out" "$D/in/a.dat"
	pid=$(serve_pid)
	take a
	# the first PUT of a server uses .jq-PID-0.tmp; the next free serial is taken instead
	ln -s "$D/outside/target" "$D/out/.jq-$pid-0.tmp"
	ln -s "$D/outside/tmp1" "$D/out/.jq-$pid-1.tmp"
	put "$ID" 'stored beside the traps'
	assert_success
	wait_server_exit
	assert_target_intact
	assert_file_not_exists "$D/outside/tmp1"
	run cat "$D/out/a.dat.result"
	assert_output 'stored beside the traps'
	# the traps are still symlinks: not written through, not renamed
	[[ -L $D/out/.jq-$pid-0.tmp && -L $D/out/.jq-$pid-1.tmp ]]
}

@test "symlinks at every temporary name it would try: the result is refused with a reason" {
	local pid i before
	printf 'a\n' >"$D/in/a.dat"
	serve -o "$D/out" "$D/in/a.dat"
	pid=$(serve_pid)
	take a
	for ((i = 0; i < 100; i++)); do
		ln -s "$D/outside/t$i" "$D/out/.jq-$pid-$i.tmp"
	done
	ln -sf "$D/outside/target" "$D/out/.jq-$pid-0.tmp"
	before=$(snapshot)
	put "$ID" 'nowhere to go'
	assert_failure 7
	assert_regex "$stderr" 'cannot store the result: .*File exists'
	assert_equal "$(snapshot)" "$before"
	assert_target_intact
	# the job waits for another try, and the next one uses fresh names
	put "$ID" 'second try'
	assert_success
	wait_server_exit
	run cat "$D/out/a.dat.result"
	assert_output 'second try'
	run ls -A "$D/outside"
	assert_output 'target'
}

@test "a temporary file left by a dead server that is a symlink is removed, not followed" {
	local dead=4194000
	while kill -0 "$dead" 2>/dev/null; do dead=$((dead + 1)); done
	printf 'a\n' >"$D/in/a.dat"
	ln -s "$D/outside/target" "$D/in/.jq-$dead-0.tmp"
	ln -s "$D/outside" "$D/in/.jq-$dead-1.tmp"
	serve "$D/in/a.dat"
	take a
	put "$ID" 'done'
	assert_success
	wait_server_exit
	assert_target_intact
	run ls -A "$D/outside"
	assert_output 'target'
	assert_file_not_exists "$D/in/.jq-$dead-0.tmp"
	assert_file_not_exists "$D/in/.jq-$dead-1.tmp"
}

@test "the result directory swapped for a symlink during a run gets nothing through it" {
	printf 'a\n' >"$D/in/a.dat"
	printf 'b\n' >"$D/in/b.dat"
	serve -o "$D/out" "$D/in/a.dat" "$D/in/b.dat"
	take a
	put "$ID" 'before the swap'
	assert_success
	take b
	mv "$D/out" "$D/out.orig"
	ln -s "$D/outside" "$D/out"
	put "$ID" 'after the swap'
	# stored in the directory the server was started with, or refused with a reason
	if ((status == 0)); then
		run cat "$D/out.orig/b.dat.result"
		assert_output 'after the swap'
	else
		assert_regex "$stderr" 'cannot store the result'
	fi
	run ls -A "$D/outside"
	assert_output 'target'
	assert_target_intact
	run cat "$D/out.orig/a.dat.result"
	assert_output 'before the swap'
}

@test "the directory beside the inputs swapped for a symlink during a run gets nothing through it" {
	printf 'a\n' >"$D/in/a.dat"
	serve "$D/in/a.dat"
	take a
	mv "$D/in" "$D/in.orig"
	ln -s "$D/outside" "$D/in"
	cp "$D/in.orig/a.dat" "$D/outside/a.dat" # the same name on the other side
	put "$ID" 'after the swap'
	if ((status != 0)); then
		assert_regex "$stderr" 'cannot store the result'
	fi
	assert_file_not_exists "$D/outside/a.dat.result"
	run ls -A "$D/outside"
	assert_output $'a.dat\ntarget'
	assert_target_intact
}

@test "--result templates that would leave the result directory are refused at start" {
	local t before
	printf 'a\n' >"$D/in/a.dat"
	printf 'x\n' >"$D/in/..x"
	before=$(snapshot)
	for t in '../x' '../../outside/target' "$D/outside/target" '/abs' 'a/b' '{name}/x' \
		'{stem}/../x' '..' '.' '' '{{name}}/x' '../{name}' 'x/'; do
		run --separate-stderr jq-serve --fresh -l 127.0.0.1:0 -o "$D/out" -r "$t" "$D/in/a.dat"
		assert_failure 2
		assert_regex "$stderr" 'a result name must be a plain, non-empty file name'
	done
	# placeholders that expand to "." or ".." for one input are refused too
	for t in '{stem}' '{stem}.' '{stem}{stem}'; do
		run --separate-stderr jq-serve --fresh -l 127.0.0.1:0 -r "$t" "$D/in/..x"
		assert_failure 2
		assert_regex "$stderr" 'plain, non-empty file name'
	done
	assert_equal "$(snapshot)" "$before"
	assert_target_intact
}

@test "results and temporary files get the umask's modes, at most 0644 by default; state dir 0700" {
	local tmp
	printf 'a\n' >"$D/in/a.dat"
	printf 'b\n' >"$D/in/b.dat"
	umask 022
	mkdir -p "$D/state"
	serve --state-dir "$D/state/here" -o "$D/out" "$D/in/a.dat"
	run stat -c %a "$D/state/here"
	assert_output 700
	run stat -c %a "$D/state/here/"journal-*
	assert_output 600
	# a PUT left half-way: its temporary file exists
	hello
	sendl 'TAKE wait=0'
	expect 'JOB 1 *'
	job_token
	recv_payload
	sendl "PUT 1 token=$token" 'DATA 6'
	send 'partia'
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		tmp=$(find "$D/out" -name '.jq-*.tmp')
		[[ -z $tmp ]] || break
		sleep 0.05
	done
	[[ -n $tmp ]]
	run stat -c %a "$tmp"
	assert_output 644
	# a second chunk, and the END of both
	send $'DATA 4\nrest'
	sendl "END 10 $(printf 'partiarest' | crc32c)"
	expect 'OK 1'
	exec {conn}>&-
	run stat -c %a "$D/out/a.dat.result"
	assert_output 644
	stop_server
	# a server started with a tighter umask keeps it
	umask 077
	serve -o "$D/out" "$D/in/b.dat"
	take b
	put "$ID" 'private'
	assert_success
	wait_server_exit
	run stat -c %a "$D/out/b.dat.result"
	assert_output 600
	assert_target_intact
}

@test "tabs, newlines and escapes in worker names, job names and FAIL messages break no line" {
	local esc=$'\e' n fields
	printf 'a\n' >"$D/in/a.dat"
	printf 'b\n' >"$D/in/tab"$'\t'"new"$'\n'"line${esc}[31m.dat"
	printf 'c\n' >"$D/in/c.dat" # keeps the server running until the test stops it
	serve -v --joblog "$D/w/joblog" "$D/in/a.dat" "$D/in/"tab* "$D/in/c.dat"
	# worker name: tab, LF, CR, ESC [2J (clear screen), BEL, %, DEL
	hello 'evil%09name%0A%0Dnext%1B[2J%07%25%7F'
	sendl 'TAKE wait=0'
	expect 'JOB 1 *'
	job_token
	recv_payload
	msg=$'line one\n\tline two\r'"${esc}]0;title"$'\a'"${esc}[2J the end"
	sendl "FAIL 1 token=$token exit=3"
	payload "$msg" >&"$conn"
	expect 'OK 1 done=0'
	sendl 'TAKE wait=0'
	expect 'JOB 2 *'
	job_token
	recv_payload
	sendl "FAIL 2 token=$token"
	payload "$msg" >&"$conn"
	expect 'OK 2 done=0'
	run --separate-stderr jq-stat "$SERVER"
	assert_success
	printf '%s\n' "$output" >"$D/w/stat.txt"
	no_control "$D/w/stat.txt"
	run --separate-stderr jq-stat --json "$SERVER"
	assert_success
	printf '%s\n' "$output" >"$D/w/stat.json"
	no_control "$D/w/stat.json"
	# one JSON document on one line
	assert_equal "$(wc -l <"$D/w/stat.json")" 1
	python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$D/w/stat.json"
	sendl QUIT
	expect 'OK bye'
	stop_server
	# the job log: a header and one line per attempt, each of 9 tab-separated fields
	no_control_but_tab() { ! LC_ALL=C grep -n $'[\x01-\x08\x0b-\x1f\x7f]' "$1" >&2; }
	no_control_but_tab "$D/w/joblog"
	assert_equal "$(wc -l <"$D/w/joblog")" 3
	while IFS= read -r jline; do
		IFS=$'\t' read -r -a fields <<<"$jline"
		n=${#fields[@]}
		assert_equal "$n" 9
	done <"$D/w/joblog"
	# the server's own log: one line per event, no terminal escapes from a client
	no_control "$SERVER_LOG"
}

@test "job ids that look like paths are refused and create nothing" {
	local id before passwd old
	printf 'a\n' >"$D/in/a.dat"
	mkdir -p "$D/cwd/sub"
	cd "$D/cwd/sub"
	serve -o "$D/out" "$D/in/a.dat"
	before=$(snapshot)
	passwd=$(cksum </etc/passwd)
	hello
	# a token an earlier server could have handed out for a.dat: it names the job by its input,
	# so only the id can make these requests fail
	old=$(old_token "$D/in/a.dat")
	for id in ../../etc/passwd /etc/passwd ../../outside/pwned "$D/outside/abs" ../../outside/target ../out/a.dat.result \
		a.dat 1/../1 ./1 -1 +1 0x1 '1 2' %2e%2e%2fx ''; do
		sendl "PUT $id token=$old"
		payload 'pwned' >&"$conn"
		expect 'ERR *'
		sendl "FAIL $id token=$old exit=1"
		payload 'pwned' >&"$conn"
		expect 'ERR *'
		sendl "TOUCH $id token=$old" "RELEASE $id token=$old" "RETRY $id"
		expect 'ERR *'
		expect 'ERR *'
		expect 'ERR *'
	done
	# the stream is in sync and the job untouched
	sendl STAT
	expect 'STAT total=1 waiting=1 running=0 done=0 failed=0 *'
	exec {conn}>&-
	assert_equal "$(snapshot)" "$before"
	assert_equal "$(cksum </etc/passwd)" "$passwd"
	assert_target_intact
	take a
	put "$ID" ok
	assert_success
	wait_server_exit
	run ls -A "$D/outside"
	assert_output 'target'
	run ls -A "$D/cwd/sub"
	assert_output ''
}

@test "worker names and match= globs that look like paths cannot escape" {
	local before w
	printf 'a\n' >"$D/in/a.dat"
	mkdir -p "$D/cwd/sub"
	cd "$D/cwd/sub"
	serve --joblog "$D/w/joblog" -o "$D/out" "$D/in/a.dat"
	before=$(snapshot)
	for w in ../../outside/w1 "$D/outside/w2" ..%2F..%2Foutside%2Ftarget .. .; do
		hello "$w"
		sendl 'TAKE wait=0 match=../../outside/*' 'TAKE wait=0 match=/etc/*' \
			"TAKE wait=0 match=$D/outside/*" 'TAKE wait=0 match=%2Fetc%2Fpasswd'
		expect 'NOJOB *'
		expect 'NOJOB *'
		expect 'NOJOB *'
		expect 'NOJOB *'
		sendl STAT
		expect 'STAT total=1 *'
		until [[ $line == END ]]; do recv; done
		exec {conn}>&-
	done
	# only the job log grew (by nothing: no attempt ended)
	assert_equal "$(snapshot)" "$before"
	# a real attempt by such a worker is stored where the operator said
	run --separate-stderr jq-take --worker '../../outside/w3' -o "$D/w/a" "$SERVER"
	assert_success
	put "$output" ok
	assert_success
	wait_server_exit
	run ls -A "$D/outside"
	assert_output 'target'
	run ls -A "$D/cwd/sub"
	assert_output ''
	run cat "$D/out/a.dat.result"
	assert_output ok
	assert_target_intact
}

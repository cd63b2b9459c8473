#!/usr/bin/env bats
# Pipelined requests on one connection (jq-protocol(7), "Pipelining"): the server reads and
# executes requests while earlier results are being made durable, and its replies come in
# request order; a failing request in the middle disturbs no other; results whose connection
# closed before their replies are kept; more requests than JQ_INFLIGHT_MAX (64) are all answered;
# no OK goes out before its result and its journal record are synced (strace).

# shellcheck disable=SC2154,SC2034 # $line is set by recv (test_helper/wire.bash); $greeting is read by hello_line
bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup bytes
}

teardown() {
	jq_teardown
}

# open_conn: connect fd $conn to $SERVER, read the greeting, say HELLO
open_conn() {
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	expect 'JQ 2 *'
	greeting=$line # read by hello_line
	sendl "$(hello_line 2 name=piper)"
	expect 'OK 2*'
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
			data+=$chunk
			;;
		'END '*) return 0 ;;
		*)
			echo "unexpected line in payload: '$line'" >&2
			return 1
			;;
		esac
	done
	return 1
}

# take_data: the JOB line already in $line: set $job, $token and $data (its bytes)
take_data() {
	job=${line#JOB }
	job=${job%% *}
	job_token && recv_payload
}

# serve_files N [OPTION...]: serve N files $D/f<i> holding "in<i>" on TCP, results in $D/out
serve_files() {
	local n=$1 i
	shift
	mkdir -p "$D/out"
	for ((i = 1; i <= n; i++)); do
		printf 'in%d' "$i" >"$D/f$i"
	done
	start_server -o "$D/out" "$@" "$D"/f?
}

# put_lines ID TOKEN DATA: print a PUT of DATA for job ID (to be sent in one write with others)
put_lines() {
	printf 'PUT %s token=%s\n' "$1" "$2"
	payload "$3"
}

# results_right N: every result is "R:" and its input
results_right() {
	local i
	for ((i = 1; i <= $1; i++)); do
		assert_equal "$(cat "$D/out/f$i.result")" "R:in$i"
	done
}

@test "pipeline: PUT, TAKE, PUT, TAKE in one write: replies in request order, every result stored" {
	serve_files 4
	open_conn
	local -A tok dat
	sendl TAKE
	expect 'JOB *'
	take_data
	local j1=$job
	tok[$job]=$token dat[$job]=$data
	sendl TAKE
	expect 'JOB *'
	take_data
	local j2=$job
	tok[$job]=$token dat[$job]=$data
	# the JOBs of the TAKEs are ready at once, but wait behind the OKs of the PUTs before them
	{
		put_lines "$j1" "${tok[$j1]}" "R:${dat[$j1]}"
		printf 'TAKE\n'
		put_lines "$j2" "${tok[$j2]}" "R:${dat[$j2]}"
		printf 'TAKE\n'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect "OK $j1"
	expect 'JOB *'
	take_data
	local j3=$job
	tok[$job]=$token dat[$job]=$data
	expect "OK $j2"
	expect 'JOB *'
	take_data
	local j4=$job
	tok[$job]=$token dat[$job]=$data
	# a STAT after two PUTs waits for their replies and sees both done
	{
		put_lines "$j3" "${tok[$j3]}" "R:${dat[$j3]}"
		put_lines "$j4" "${tok[$j4]}" "R:${dat[$j4]}"
		printf 'STAT\nTAKE\n'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect "OK $j3"
	expect "OK $j4"
	expect 'STAT *'
	[[ $line == 'STAT total=4 '*' done=4 '* ]] || fail "STAT before its PUTs' replies: $line"
	while recv && [[ $line != END ]]; do :; done
	expect 'NOJOB finished'
	wait_server_exit 30
	assert_equal "$status" 0
	results_right 4
}

@test "pipeline: a refused request between two PUTs disturbs neither; its job stays unfinished" {
	serve_files 3
	open_conn
	local -A tok dat
	local i
	for i in 1 2; do
		sendl TAKE
		expect 'JOB *'
		take_data
		tok[$job]=$token dat[$job]=$data
	done
	local ids=("${!tok[@]}")
	# job 3 was never taken: its PUT is refused after its payload is skipped
	{
		put_lines "${ids[0]}" "${tok[${ids[0]}]}" "R:${dat[${ids[0]}]}"
		put_lines 3 "${tok[${ids[0]}]}" 'not mine'
		printf 'PUT 99 token=%s\n' "${tok[${ids[1]}]}"
		payload 'no such job'
		put_lines "${ids[1]}" "${tok[${ids[1]}]}" "R:${dat[${ids[1]}]}"
		printf 'TAKE\n'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect "OK ${ids[0]}"
	expect 'ERR *'
	expect 'ERR NOSUCHJOB*'
	expect "OK ${ids[1]}"
	expect 'JOB 3 *'
	take_data
	put_lines 3 "$token" "R:$data" >&"$conn"
	expect 'OK 3'
	wait_server_exit 30
	assert_equal "$status" 0
	results_right 3
}

@test "pipeline: ADDs past the in-flight cap (100 in one write, a duplicate among them) are all answered in order" {
	start_server --keep -o "$D/out"
	open_conn
	local i n=100
	# ADDs of size 0 and a few with data, pipelined; a second "j50" is refused at once
	# (being added), and its ERR still comes in its place
	for ((i = 1; i <= n; i++)); do
		if ((i % 10 == 0)); then
			printf 'ADD name=j%d\n' "$i"
			payload "data$i"
		else
			printf 'ADD name=j%d size=0\nEND 0 00000000\n' "$i"
		fi
		if ((i == 50)); then
			printf 'ADD name=j50 size=0\nEND 0 00000000\n'
		fi
	done >"$D/batch"
	cat "$D/batch" >&"$conn"
	for ((i = 1; i <= n; i++)); do
		expect "OK $i" || fail "ADD $i"
		if ((i == 50)); then
			expect 'ERR EXISTS *' || fail "the duplicate ADD"
		fi
	done
	sendl 'STAT'
	expect "STAT total=$n *"
}

@test "pipeline: a connection closed with its PUTs in flight: the results are stored, the jobs done" {
	command -v strace >/dev/null || skip "strace is missing (apt-get install strace)"
	local real
	real=$(command -v jq-serve)
	mkdir -p "$D/bin"
	# every fdatasync takes 0.2 s longer: the PUTs are still in flight when the socket closes
	cat >"$D/bin/jq-serve" <<EOF
#!/bin/sh
ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
exec strace -f -o /dev/null -e trace=fdatasync -e inject=fdatasync:delay_enter=200000 '$real' "\$@"
EOF
	chmod +x "$D/bin/jq-serve"
	PATH=$D/bin:$PATH serve_files 3
	open_conn
	local -A tok dat
	local i
	for i in 1 2 3; do
		sendl TAKE
		expect 'JOB *'
		take_data
		tok[$job]=$token dat[$job]=$data
	done
	for i in "${!tok[@]}"; do
		put_lines "$i" "${tok[$i]}" "R:${dat[$i]}"
	done >"$D/batch"
	cat "$D/batch" >&"$conn"
	exec {conn}>&-
	wait_server_exit 60
	assert_equal "$status" 0
	results_right 3
}

@test "pipeline: a worker gone while its result is being stored is not lost: with --crash-limit 1 the job is done, not failed" {
	command -v strace >/dev/null || skip "strace is missing (apt-get install strace)"
	local real
	real=$(command -v jq-serve)
	mkdir -p "$D/bin"
	# every fdatasync takes 0.5 s longer: the PUT is being stored when the socket closes
	cat >"$D/bin/jq-serve" <<EOF
#!/bin/sh
ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
exec strace -f -o /dev/null -e trace=fdatasync -e inject=fdatasync:delay_enter=500000 '$real' "\$@"
EOF
	chmod +x "$D/bin/jq-serve"
	PATH=$D/bin:$PATH serve_files 2 -v --crash-limit 1
	open_conn
	# a connection's job, and one on a 1 s lease that runs out while its result is stored
	sendl TAKE
	expect 'JOB *'
	take_data
	put_lines "$job" "$token" "R:$data" >"$D/batch"
	sendl 'TAKE hold=lease lease=1'
	expect 'JOB *'
	take_data
	put_lines "$job" "$token" "R:$data" >>"$D/batch"
	cat "$D/batch" >&"$conn"
	exec {conn}>&-
	wait_server_exit 60
	assert_equal "$status" 0
	results_right 2
	run cat "$SERVER_LOG"
	refute_output --partial 'lost'
	assert_output --partial '2 jobs: 2 done, 0 failed'
}

@test "pipeline: strace: two PUTs in one write: each synced, renamed, directory synced, journal synced, then the OKs in order" {
	command -v strace >/dev/null || skip "strace is missing (apt-get install strace)"
	local real log=$D/strace.log
	real=$(command -v jq-serve)
	mkdir -p "$D/bin"
	cat >"$D/bin/jq-serve" <<EOF
#!/bin/sh
ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
exec strace -f -s 200 -o '$log' \
	-e trace=openat,fdatasync,fsync,rename,renameat,renameat2,write,sendto,sendmsg,writev \
	'$real' "\$@"
EOF
	chmod +x "$D/bin/jq-serve"
	PATH=$D/bin:$PATH serve_files 2
	open_conn
	local -A tok dat
	local i
	for i in 1 2; do
		sendl TAKE
		expect 'JOB *'
		take_data
		tok[$job]=$token dat[$job]=$data
	done
	{
		put_lines 1 "${tok[1]}" "R:${dat[1]}"
		put_lines 2 "${tok[2]}" "R:${dat[2]}"
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect 'OK 1'
	expect 'OK 2'
	wait_server_exit 30
	assert_equal "$status" 0
	results_right 2
	# for each job, line numbers of each step in the order they must come; then OK 1 before OK 2
	run awk '
	function fd(s) { sub(/^[^(]*\(/, "", s); sub(/[,)].*$/, "", s); return s }
	function path(s) { if (!match(s, /"[^"]*"/)) return ""; return substr(s, RSTART, RLENGTH) }
	/openat\(/ && / = [0-9]+$/ { fpath[$NF] = path($0) }
	/openat\(.*journal-/ && / = [0-9]+$/ { jfd = $NF }
	/openat\(.*\.jq-[0-9]+-[0-9]+\.tmp/ && / = [0-9]+$/ {
		match($0, /\.jq-[0-9]+-[0-9]+\.tmp/); tfd[substr($0, RSTART, RLENGTH)] = $NF; tline[$NF] = NR }
	/^[0-9]+ +fdatasync\(/ { f = fd($2); last_sync[f] = NR
		for (k = 1; k <= 2; k++) if (f == jfd && drec[k] && !jsync[k]) jsync[k] = NR }
	/rename(at2?)?\(.*f[12]\.result/ && / = 0$/ {
		k = ($0 ~ /f1\.result/) ? 1 : 2
		match($0, /\.jq-[0-9]+-[0-9]+\.tmp/); t = tfd[substr($0, RSTART, RLENGTH)]
		tsync[k] = (t != "" && last_sync[t] > tline[t]) ? last_sync[t] : 0
		ren[k] = NR; dpath[k] = fpath[fd($2)] }
	# one directory sync serves every result renamed into it before it (by any descriptor)
	/^[0-9]+ +fsync\(/ { for (k = 1; k <= 2; k++) if (ren[k] && !dsync[k] && fpath[fd($2)] == dpath[k]) dsync[k] = NR }
	/^[0-9]+ +write\(/ && fd($2) == jfd { for (k = 1; k <= 2; k++) if (index($0, "\"D " k " ")) drec[k] = NR }
	/(write|writev|sendmsg|sendto)\(/ { for (k = 1; k <= 2; k++) if (index($0, "OK " k "\\n") && !ok[k]) ok[k] = NR }
	END {
		good = 1
		for (k = 1; k <= 2; k++) {
			printf "job %d: datasync %d rename %d dirsync %d record %d recsync %d ok %d\n",
				k, tsync[k], ren[k], dsync[k], drec[k], jsync[k], ok[k]
			if (!(tsync[k] && tsync[k] < ren[k] && ren[k] < dsync[k] && dsync[k] < drec[k] &&
			    drec[k] < jsync[k] && jsync[k] < ok[k]))
				good = 0
		}
		if (good && ok[1] <= ok[2])
			print "in order" }' "$log"
	sed 's/^/# /' <<<"$output" >&3
	assert_line "in order"
}

@test "pipeline: jq-put --add of 40 FILEs (past its window of 32): ids in argument order, each job named by its FILE" {
	mkdir -p "$D/in"
	start_server --keep -o "$D/out"
	local i files=() want=()
	for ((i = 1; i <= 40; i++)); do
		printf 'data %d\n' "$i" >"$D/in/f$i"
		files+=("$D/in/f$i")
		want+=("$i")
	done
	run -0 jq-put --add "$SERVER" "${files[@]}"
	assert_output "$(printf '%s\n' "${want[@]}")"
	jq-stat --json --list "$SERVER" >"$D/list.json"
	json_file_check "$D/list.json" \
		'[x["id"] for x in j["list"]] == [str(i) for i in range(1, 41)]' \
		'[x["name"] for x in j["list"]] == ["f%d" % i for i in range(1, 41)]'
}

@test "pipeline: jq-put --add with a refused FILE in the middle: the ids of those sent before and after it are printed, exit 4" {
	mkdir -p "$D/in"
	start_server --keep -o "$D/out"
	printf 'one\n' >"$D/in/b"
	run -0 jq-put --add "$SERVER" "$D/in/b"
	assert_output 1
	printf 'a\n' >"$D/in/a"
	printf 'c\n' >"$D/in/c"
	printf 'd\n' >"$D/in/d"
	# all four go out before the refusal of b is read: a, c and d are added, and their ids printed
	run --separate-stderr -4 jq-put --add "$SERVER" "$D/in/a" "$D/in/b" "$D/in/c" "$D/in/d"
	assert_output $'2\n3\n4'
	[[ $stderr == *"$D/in/b (b): server refused: "*"(EXISTS); the 1 FILE before it was added (from $D/in/a to $D/in/a); of the 2 sent after it, 2 were added (their ids follow)"* ]] ||
		fail "stderr: $stderr"
	jq-stat --json --list "$SERVER" >"$D/list.json"
	json_file_check "$D/list.json" \
		'[(x["id"], x["name"]) for x in j["list"]] == [("1", "b"), ("2", "a"), ("3", "c"), ("4", "d")]'
}

@test "pipeline: a large job taken behind a PUT streams after its OK; a small one is copied behind it" {
	mkdir -p "$D/out"
	printf 'in1' >"$D/f1"
	head -c 300000 /dev/urandom | base64 -w 0 >"$D/f2"
	printf 'in3' >"$D/f3"
	start_server -o "$D/out" "$D/f1" "$D/f2" "$D/f3"
	open_conn
	sendl TAKE
	expect 'JOB 1 *'
	take_data
	# job 2 (over 64 KiB) waits as a stream behind OK 1; job 3 is copied whole behind OK 2
	{
		put_lines 1 "$token" "R:$data"
		printf 'TAKE\n'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect 'OK 1'
	expect 'JOB 2 *'
	take_data
	assert_equal "$data" "$(cat "$D/f2")"
	{
		put_lines 2 "$token" "R:x"
		printf 'TAKE\n'
	} >"$D/batch"
	cat "$D/batch" >&"$conn"
	expect 'OK 2'
	expect 'JOB 3 *'
	take_data
	assert_equal "$data" in3
	put_lines 3 "$token" "R:$data" >&"$conn"
	expect 'OK 3'
	wait_server_exit 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/f3.result")" R:in3
}

@test "pipeline: strace: replies to a peer that reads them are written at once, with no EPOLLOUT watch (epoll_ctl) per reply" {
	command -v strace >/dev/null || skip "strace is missing (apt-get install strace)"
	local real log=$D/strace.log
	real=$(command -v jq-serve)
	mkdir -p "$D/bin"
	cat >"$D/bin/jq-serve" <<EOF
#!/bin/sh
ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
exec strace -f -o '$log' -e trace=epoll_ctl,writev '$real' "\$@"
EOF
	chmod +x "$D/bin/jq-serve"
	PATH=$D/bin:$PATH serve_files 5
	open_conn
	local i
	for i in 1 2 3 4 5; do
		sendl TAKE
		expect 'JOB *'
		take_data
		put_lines "$job" "$token" "R:$data" >&"$conn"
		expect "OK $job"
	done
	sendl TAKE
	expect 'NOJOB finished'
	wait_server_exit 30
	assert_equal "$status" 0
	results_right 5
	# greeting, HELLO's OK, 5 JOBs, 5 OKs, NOJOB: 13 replies, each a writev, none watched for
	run grep -c 'writev(' "$log"
	sed 's/^/# writev: /' <<<"$output" >&3
	((output >= 13))
	run grep -c 'EPOLLOUT' "$log"
	sed 's/^/# epoll_ctl with EPOLLOUT: /' <<<"$output" >&3
	assert_output 0
}

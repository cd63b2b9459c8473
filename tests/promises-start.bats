#!/usr/bin/env bats
# tests/promises-start.bats: promises of issue 9 about what jq-serve checks at start and holds to
# while it runs.
#   - Inputs stay inputs: a job's input is opened without following links, without blocking,
#     and only while it is still the file recorded at start; otherwise the job fails with the
#     reason, and nothing else is ever sent.
#   - Every retry is bounded: a result that cannot be stored fails its job after 3 attempts with
#     backoff; a result path that can never work is refused at start.
#   - Identity, not spelling: one file twice, a result on an input, two results on one path are
#     refused (exit 2) naming both arguments.
#   - One server per list, checked first: --fresh is refused while another server holds the
#     list; the journal is keyed by resolved paths; an unsafe state directory is refused.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
}

# run_all: jq-run copies every job to its result; waits for the run to end (status in $status)
run_all() {
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" "$SERVER" -- cat
	wait_server_exit 60
}

@test "an input swapped for a symlink to another owner's 0600 file after start: the job fails, the secret is never sent" {
	printf 'secret of nobody\n' >"$D/secret"
	chmod 0600 "$D/secret"
	chown nobody "$D/secret" 2>/dev/null || chown 65534 "$D/secret"
	printf 'public a\n' >"$D/in/a"
	printf 'public b\n' >"$D/in/b"
	start_server "$D/in/a" "$D/in/b"
	ln -sf "$D/secret" "$D/in/a.new"
	mv -f "$D/in/a.new" "$D/in/a"
	run_all
	assert_equal "$status" 1
	assert_file_not_exist "$D/in/a.result"
	assert_equal "$(cat "$D/in/b.result")" "public b"
	grep -q 'input changed since start: now a symbolic link' "$SERVER_LOG"
	run ! grep -rqs 'secret of nobody' "$D/in" "$TMPD"
}

@test "an input swapped for a FIFO: the job fails, STAT is still answered, SIGTERM still ends the server" {
	printf 'a\n' >"$D/in/a"
	printf 'b\n' >"$D/in/b"
	start_server "$D/in/a" "$D/in/b"
	rm "$D/in/a"
	mkfifo "$D/in/a"
	run timeout -k 2 10 jq-take -o "$D/got" "$SERVER"
	assert_success
	assert_equal "$(cat "$D/got")" b
	run -0 timeout -k 2 5 jq-stat "$SERVER"
	grep -q 'input changed since start: now a FIFO' "$SERVER_LOG"
	kill -TERM "$SERVER_PID"
	wait_server_exit 5
}

@test "an input grown, shrunk, replaced or removed after start: the job fails with the reason, nothing is sent" {
	printf '0123456789\n' >"$D/in/grow"
	printf '0123456789\n' >"$D/in/shrink"
	printf 'same\n' >"$D/in/same"
	printf 'old\n' >"$D/in/swap"
	printf 'gone\n' >"$D/in/gone"
	start_server "$D/in/grow" "$D/in/shrink" "$D/in/same" "$D/in/swap" "$D/in/gone"
	printf 'more\n' >>"$D/in/grow"
	printf '01\n' >"$D/in/shrink.tmp"
	cat "$D/in/shrink.tmp" >"$D/in/shrink"	# same inode, fewer bytes
	printf 'new\n' >"$D/in/swap.tmp"
	mv "$D/in/swap.tmp" "$D/in/swap"		# same size, another file
	rm "$D/in/gone"
	run_all
	assert_equal "$status" 1
	grep -q 'swap failed: input changed since start: replaced (inode changed)' "$SERVER_LOG"
	grep -q 'gone failed: input gone: No such file or directory' "$SERVER_LOG"
	assert_file_not_exist "$D/in/swap.result"
	grep -q 'grow failed: input changed since start: size 11 -> 16' "$SERVER_LOG"
	grep -q 'shrink failed: input changed since start: size 11 -> 3' "$SERVER_LOG"
	assert_file_not_exist "$D/in/grow.result"
	assert_file_not_exist "$D/in/shrink.result"
	assert_equal "$(cat "$D/in/same.result")" same
}

@test "a directory at a result path, a FIFO or device as input: refused at start (exit 2), naming it" {
	printf 'a\n' >"$D/in/a"
	mkdir "$D/in/a.result"
	serve_refused 2 "$D/in/a"
	assert_regex "$stderr" "$D/in/a.result.*is a directory"
	rmdir "$D/in/a.result"
	# a result name longer than its directory allows
	serve_refused 2 -r "{name}.$(printf 'x%.0s' {1..300})" "$D/in/a"
	assert_regex "$stderr" 'the name is longer than the [0-9]+ bytes its directory allows'
	mkfifo "$D/in/fifo"
	serve_refused 2 "$D/in/a" "$D/in/fifo"
	assert_regex "$stderr" "$D/in/fifo: is a FIFO"
	serve_refused 2 "$D/in/a" /dev/null
	assert_regex "$stderr" "/dev/null: is a character device"
	# --skip-missing skips them and serves the rest
	start_server --skip-missing "$D/in/a" "$D/in/fifo"
	run -0 jq-stat --json "$SERVER"
	assert_output --regexp '"total": ?1[,}]'
}

@test "a directory swapped in at the result path mid-run: the job fails after 3 attempts with backoff, the run ends" {
	printf 'a\n' >"$D/in/a"
	start_server -v "$D/in/a"
	mkdir "$D/in/a.result"
	local t0=$SECONDS
	run_all
	assert_equal "$status" 1
	# 3 attempts, with waits of 1 s and 2 s between them
	(( SECONDS - t0 >= 3 ))
	assert_equal "$(grep -c '/in/a: cannot store result: ' "$SERVER_LOG")" 3
	grep -q 'failed: cannot store result: .* (3 attempts)' "$SERVER_LOG"
	assert_equal "$(grep -c 'taken by' "$SERVER_LOG")" 3
}

@test "one file named twice, a result on an input, two results on one path, hard links: exit 2 naming both" {
	cd "$D/in"
	printf 'a\n' >a
	printf 'r\n' >a.result
	printf 'w\n' >a.wav
	printf 'f\n' >a.flac
	ln a hard
	serve_refused 2 a ./a
	assert_regex "$stderr" 'a and \./a are the same file'
	serve_refused 2 a.result ./a
	assert_regex "$stderr" 'result of \./a, \./a\.result, would overwrite the input a\.result'
	serve_refused 2 -r '{stem}.mp3' a.wav ./a.flac
	assert_regex "$stderr" 'results of (a\.wav and \./a\.flac|\./a\.flac and a\.wav) would both be written'
	assert_regex "$stderr" 'choose another --result or --output-dir'
	# same base name in two directories, flattened by -o: no template helps, the hint says so
	mkdir x y
	printf 'x\n' >x/s.wav
	printf 'y\n' >y/s.wav
	serve_refused 2 -o out x/s.wav y/s.wav
	assert_regex "$stderr" 'would both be written to out/s\.wav\.result \(inputs of the same name in different directories: drop --output-dir'
	serve_refused 2 a hard
	assert_regex "$stderr" '(a and hard|hard and a) are the same file \(hard links'
	assert_equal "$(cat a.result)" r
}

@test "two servers on one list with --fresh: the second is refused, the first's journal kept" {
	printf 'a\n' >"$D/in/a"
	start_server "$D/in/a"
	serve_refused 8 --fresh "$D/in/a"
	assert_regex "$stderr" 'another jq-serve is serving this list'
	run -0 ls "$JQ_STATE_DIR"
	assert_output --regexp '^journal-[0-9a-f]{16}$'
}

@test "same names in two directories: separate journals; absolute paths from elsewhere: the same one" {
	mkdir -p "$D/d1" "$D/d2"
	printf '1\n' >"$D/d1/a"
	printf '2\n' >"$D/d2/a"
	cd "$D/d1"
	start_server a
	local first=$SERVER_PID
	cd "$D/d2"
	start_server a		# in the old build: "another jq-serve is serving this list"
	run -0 ls "$JQ_STATE_DIR"
	assert_equal "${#lines[@]}" 2
	stop_server "$first"
	stop_server
	cd /
	start_server "$D/d1/a"
	stop_server
	run -0 ls "$JQ_STATE_DIR"
	assert_equal "${#lines[@]}" 2
}

@test "a state directory with mode 0777, or owned by another user: refused" {
	printf 'a\n' >"$D/in/a"
	mkdir -m 0777 "$D/open"
	chmod 0777 "$D/open"
	JQ_STATE_DIR=$D/open serve_refused 8 "$D/in/a"
	assert_regex "$stderr" "state directory $D/open is writable by others; chmod go-w $D/open"
	mkdir -m 0700 "$D/theirs"
	chown nobody "$D/theirs" 2>/dev/null || chown 65534 "$D/theirs"
	JQ_STATE_DIR=$D/theirs serve_refused 8 "$D/in/a"
	assert_regex "$stderr" "state directory $D/theirs is owned by uid [0-9]+, not by us"
	run ! compgen -G "$D/open/journal-*"
	run ! compgen -G "$D/theirs/journal-*"
}

@test "a journal writable by others, or a symbolic link: refused" {
	local j
	printf 'a\n' >"$D/in/a"
	start_server "$D/in/a"
	stop_server
	j=$(compgen -G "$JQ_STATE_DIR/journal-*")
	chmod 0666 "$j"
	serve_refused 8 "$D/in/a"
	assert_regex "$stderr" "journal $j is writable by others; chmod go-w $j"
	chmod 0600 "$j"
	mv "$j" "$D/elsewhere"
	ln -s "$D/elsewhere" "$j"
	serve_refused 8 "$D/in/a"
	assert_regex "$stderr" "journal $j: is a symbolic link"
}

@test "an input that shrinks while it is being sent: ABORT, the job fails, no more bytes than recorded" {
	load test_helper/wire
	head -c 64M /dev/zero >"$D/in/big"
	start_server -v "$D/in/big"
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	# shellcheck disable=SC2034 # read by hello_line
	greeting=$line
	sendl "$(hello_line 2 name=by-hand)"
	expect 'OK 2*'
	sendl 'TAKE'
	expect 'JOB 1 * size=67108864 *'
	sleep 0.5	# the server fills the socket buffers, then waits for us to read
	truncate -s 32M "$D/in/big"
	timeout 30 cat <&"$conn" >"$D/stream" || true
	exec {conn}>&-
	# the data chunks, then ABORT right after the last byte: no END
	assert_equal "$(tail -c 6 "$D/stream")" ABORT
	assert_equal "$(grep -ac 'END [0-9]' "$D/stream")" 0
	(($(stat -c %s "$D/stream") < 32 * 1024 * 1024 + 4096))
	grep -q 'input changed while being sent: it shrank to 33554432 bytes' "$SERVER_LOG"
}

@test "the default state directory is the user's: one list served from two directories is refused the second time" {
	printf 'a\n' >"$D/in/a"
	mkdir -p "$D/w1" "$D/w2" "$D/home"
	# no --state-dir, no JQ_STATE_DIR: the default, under HOME
	unset JQ_STATE_DIR XDG_STATE_HOME
	export HOME=$D/home
	cd "$D/w1"
	start_server ../in/a
	# the journal is open (and locked) before the server listens
	compgen -G "$D/home/.local/state/jq/journal-*" >/dev/null
	# the same file named another way, from another directory: the same journal, locked
	cd "$D/w2"
	serve_refused 8 "$D/in/a"
	[[ $stderr == *"another jq-serve is serving this list"* ]]
	[[ ! -e $D/w1/.jq-serve && ! -e $D/w2/.jq-serve ]]
}

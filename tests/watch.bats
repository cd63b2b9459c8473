#!/usr/bin/env bats
# tests/watch.bats: jq-serve --watch DIR, the drop folder (issue 11, phase B).  Files closed
# after writing in DIR or moved in become jobs, a file still being written does not (a slow
# writer holds it open on a FIFO), nor do dot files, ~ .tmp .part files, results and the
# server's own files: no job loop.  --watch-match chooses.  The files there at start are
# served once, by the rerun rule; a restart finds the journal and serves what came while it
# was down; kill -9 loses no job and keeps the ids; a file written again; an overflow of the
# kernel's event queue; the directory removed or moved away (exit 8); bad command lines.
#
# Nothing waits by sleeping: each wait is a bounded loop on a log line or a file (wait_log,
# wait_for_file), a writer is held and let go through a FIFO, and a server is paused with
# SIGSTOP to let the kernel's queue overflow.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
	mkdir -p "$D/out" "$D/stage"
	IN=$(realpath "$D/in")	# the jobs' names begin with the resolved directory
}

# serve_pid: the jq-serve process itself (SERVER_PID is its watchdog's)
serve_pid() {
	pgrep -P "$SERVER_PID" -x jq-serve
}

# added NAME: the log line of the watched file NAME becoming a job
added() {
	printf '%s/%s added by --watch' "$IN" "$1"
}

# stat_is EXPR...: jq-stat --list --json of $SERVER satisfies each python EXPR (j is the
# document; names(j) the jobs' names in DIR, in id order)
stat_is() {
	jq-stat --list --json "$SERVER" >"$D/stat.json"
	local e pre="(lambda names: " post=")([x['name'].rsplit('/', 1)[-1] for x in j['list']])"
	local exprs=()
	for e in "$@"; do
		exprs+=("$pre$e$post")
	done
	json_file_check "$D/stat.json" "${exprs[@]}"
}

# slow_writer FILE FIFO: write a first piece to FILE and hold it open until a line comes
# through FIFO, then write a second piece and close it (in the background; the test shell
# never holds FILE)
slow_writer() {
	mkfifo "$2"
	{
		printf 'part one\n'
		read -r _ <"$2"
		printf 'part two\n'
	} >"$1" 3>&- &
	JQ_PIDS+=("$!")
}

# runs NAME: how many times the counting command below ran for NAME
runs() {
	local f=$M/runs-$1
	[[ -f $f ]] && wc -c <"$f" | tr -d ' ' || echo 0
}

# COUNT: a jq-run command that marks each run of a job in $M and upper-cases the data
COUNT=(sh -c 'printf x >>"$M/runs-${1##*/}"; tr a-z A-Z' sh '<name>')

@test "watch: files closed after writing and moved in are served; a slow writer's file only once closed, whole" {
	start_server -v --watch "$D/in"
	wait_log 'watching '
	slow_writer "$D/in/slow.txt" "$D/go"
	printf 'alpha\n' >"$D/in/a.txt"
	printf 'beta\n' >"$D/stage/b.txt"
	mv "$D/stage/b.txt" "$D/in/b.txt"
	wait_log "$(added b.txt)"
	# the events came in order: the slow file's first piece was written before b moved in
	grep -qF "$(added a.txt)" "$SERVER_LOG"
	! grep -qF 'slow.txt added' "$SERVER_LOG" || fail "a file being written was served"
	stat_is 'names == ["a.txt", "b.txt"]'
	echo go >"$D/go"
	wait_log "$(added slow.txt)"
	run -0 jq-run --max-jobs 3 -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	assert_equal "$(cat "$D/in/a.txt.result")" ALPHA
	assert_equal "$(cat "$D/in/b.txt.result")" BETA
	assert_equal "$(cat "$D/in/slow.txt.result")" $'PART ONE\nPART TWO'
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	assert_equal "$status" 0
}

@test "watch: a file held open for writing at start waits for its close; one with an up-to-date result is left out" {
	slow_writer "$D/in/slow.txt" "$D/go"
	printf 'new\n' >"$D/in/new.txt"
	printf 'old\n' >"$D/in/old.txt"
	printf 'OLD\n' >"$D/in/old.txt.result"
	touch -r "$D/in/old.txt" -d '+1 hour' "$D/in/old.txt.result"
	start_server -v --watch "$D/in"
	wait_log 'watching '
	grep -qF '1 file to serve; 1 already has results (--redo serves them again); 1 still open for writing (served once closed)' "$SERVER_LOG"
	grep -qF "old.txt: its result $IN/old.txt.result is up to date; not served" "$SERVER_LOG"
	stat_is 'names == ["new.txt"]'
	echo go >"$D/go"
	wait_log "$(added slow.txt)"
	run -0 jq-run --max-jobs 2 -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	assert_equal "$(cat "$D/in/slow.txt.result")" $'PART ONE\nPART TWO'
	assert_equal "$(cat "$D/in/old.txt.result")" OLD
}

@test "watch: a file moved in while still open for writing waits for its writer's close" {
	start_server -v --watch "$D/in"
	wait_log 'watching '
	slow_writer "$D/stage/moving.txt" "$D/go"
	# the writer has opened it (the first piece is there) before it moves
	wait_for_file "$D/stage/moving.txt"
	mv "$D/stage/moving.txt" "$D/in/moving.txt"
	printf 'after\n' >"$D/in/after.txt"
	wait_log "$(added after.txt)"
	stat_is 'names == ["after.txt"]'
	echo go >"$D/go"
	wait_log "$(added moving.txt)"
	run -0 jq-run --max-jobs 2 -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	assert_equal "$(cat "$D/in/moving.txt.result")" $'PART ONE\nPART TWO'
}

@test "watch: dot files, ~ .tmp .part, names like results, results and temp files, the job log are never jobs (no loop)" {
	start_server -v --watch "$D/in" --joblog "$D/in/jobs.log"
	wait_log 'watching '
	jq_bg jq-run -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	local f
	for f in .hidden x~ x.tmp x.part fake.result; do
		printf 'not a job\n' >"$D/in/$f"
	done
	mkdir "$D/in/sub"
	printf 'in a subdirectory\n' >"$D/in/sub/s.txt"
	ln -s "$D/in/.hidden" "$D/in/link.txt"
	mkfifo "$D/in/fifo.txt"
	printf 'alpha\n' >"$D/in/a.txt"
	wait_for_file "$D/in/a.txt.result"
	printf 'mu\n' >"$D/in/m.txt"
	wait_for_file "$D/in/m.txt.result"
	# every event before n.txt's was handled when n.txt becomes a job: the results of a and
	# m (renamed into DIR from dot files) and the job log were left alone
	printf 'nu\n' >"$D/in/n.txt"
	wait_log "$(added n.txt)"
	stat_is 'names == ["a.txt", "m.txt", "n.txt"]'
	assert_equal "$(cat "$D/in/m.txt.result")" MU
	[[ -s $D/in/jobs.log ]] || fail "the job log was not written in DIR"
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	# the next start scans DIR: still the same three jobs, nothing new
	start_server -v --watch "$D/in" --joblog "$D/in/jobs.log"
	wait_log 'watching '
	grep -qF 'watching '"$D/in"': 0 files to serve' "$SERVER_LOG"
	stat_is 'names == ["a.txt", "m.txt", "n.txt"]'
}

@test "watch: --watch-match chooses the files served (repeatable)" {
	start_server -v --watch "$D/in" --watch-match '*.txt' --watch-match '*.csv'
	wait_log 'watching '
	printf 'a\n' >"$D/in/a.txt"
	printf 'b\n' >"$D/in/b.dat"
	printf 'c\n' >"$D/in/c.csv"
	printf 'd\n' >"$D/in/d.txt"
	wait_log "$(added d.txt)"
	stat_is 'names == ["a.txt", "c.csv", "d.txt"]'
}

@test "watch: the files there at start are served once; a restart skips the done ones and serves those that came while it was down" {
	printf 'alpha\n' >"$D/in/a.txt"
	printf 'beta\n' >"$D/in/b.txt"
	start_server -v --watch "$D/in" -o "$D/out"
	wait_log 'watching '
	grep -qF '2 files to serve' "$SERVER_LOG"
	run -0 jq-run --max-jobs 2 -j 1 --tmpdir "$TMPD" "$SERVER" -- "${COUNT[@]}"
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	assert_equal "$status" 0
	# while it is down, a file comes
	printf 'gamma\n' >"$D/in/c.txt"
	start_server -v --watch "$D/in/" -o "$D/out"
	wait_log "$(added c.txt)"
	grep -qF 'resuming from ' "$SERVER_LOG"
	grep -qF ': 2 done, 0 failed, 0 to run' "$SERVER_LOG"
	# the files there at start get their ids in the directory's order
	stat_is 'sorted(names[:2]) == ["a.txt", "b.txt"] and names[2] == "c.txt"' \
		'j["jobs"]["done"] == 2' '[x["id"] for x in j["list"]] == ["1", "2", "3"]'
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- "${COUNT[@]}"
	assert_equal "$(cat "$D/out/c.txt.result")" GAMMA
	assert_equal "$(runs a.txt) $(runs b.txt) $(runs c.txt)" "1 1 1"
}

@test "watch: a server killed with -9 and restarted loses no job; ids, a done job and its result stay" {
	start_server -v --watch "$D/in"
	wait_log 'watching '
	printf 'alpha\n' >"$D/in/a.txt"
	printf 'beta\n' >"$D/in/b.txt"
	printf 'gamma\n' >"$D/in/c.txt"
	wait_log "$(added c.txt)"
	run -0 jq-take -o "$D/job1" "$SERVER"
	assert_handle 1
	printf 'done by hand\n' >"$D/res1"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/res1"
	run -0 jq-take -o "$D/job2" "$SERVER"
	assert_handle 2
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
	printf 'delta\n' >"$D/in/d.txt"
	start_server -v --watch "$D/in"
	wait_log "$(added d.txt)"
	stat_is 'names == ["a.txt", "b.txt", "c.txt", "d.txt"]' \
		'[x["state"] for x in j["list"]] == ["done", "waiting", "waiting", "waiting"]'
	run -0 jq-run --max-jobs 3 -j 1 --tmpdir "$TMPD" "$SERVER" -- "${COUNT[@]}"
	assert_equal "$(cat "$D/in/a.txt.result")" 'done by hand'
	assert_equal "$(cat "$D/in/b.txt.result")" BETA
	assert_equal "$(cat "$D/in/d.txt.result")" DELTA
	assert_equal "$(runs a.txt) $(runs b.txt) $(runs c.txt) $(runs d.txt)" "0 1 1 1"
	stat_is 'j["jobs"]["done"] == 4'
}

@test "watch: a file written again: a waiting job serves the new version, a done one is not served again, a failed one runs again" {
	start_server -v --watch "$D/in"
	wait_log 'watching '
	printf 'one\n' >"$D/in/a.txt"
	wait_log "$(added a.txt)"
	# another size: the file's identity changes whatever the clock's grain
	printf 'second\n' >"$D/in/a.txt"
	wait_log "job 1 $IN/a.txt: written again before it was served; it serves the new version"
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	assert_equal "$(cat "$D/in/a.txt.result")" SECOND
	printf 'third one\n' >"$D/in/a.txt"
	wait_log "$IN/a.txt: written again after job 1 was done; not served again"
	printf 'bad\n' >"$D/in/b.txt"
	wait_log "$(added b.txt)"
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 2
	run -0 jq-put --fail "$SERVER" "$HANDLE"
	printf 'good\n' >"$D/in/b.txt"
	wait_log "job 2 $IN/b.txt: retry asked by --watch"
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 2
	assert_equal "$(cat "$D/job")" good
	stat_is 'names == ["a.txt", "b.txt"]' 'j["list"][0]["state"] == "done"'
	assert_equal "$(cat "$D/in/a.txt.result")" SECOND
}

@test "watch: the kernel's event queue overflows: the directory is scanned again and no file is lost" {
	local max n i
	max=$(cat /proc/sys/fs/inotify/max_queued_events)
	((max <= 100000)) || skip "max_queued_events is $max: too many files to make"
	n=$((max + 200))
	start_server --watch "$D/in" -o "$D/out"
	wait_log 'watching '
	kill -STOP "$(serve_pid)"
	for ((i = 1; i <= n; i++)); do
		: >"$D/in/f$i"
	done
	kill -CONT "$(serve_pid)"
	wait_log "the kernel's event queue overflowed; scanning the directory again"
	wait_log 'scanned again: '
	local j
	for ((j = 0; j < 200; j++)); do
		jq-stat --json "$SERVER" >"$D/stat.json"
		json_file_check "$D/stat.json" "j['jobs']['total'] >= $n" 2>/dev/null && break
		sleep 0.1
	done
	json_file_check "$D/stat.json" "j['jobs']['total'] == $n"
}

@test "watch: the directory removed, or moved away: the server says so, shuts down and exits 8" {
	start_server -v --watch "$D/in"
	wait_log 'watching '
	printf 'alpha\n' >"$D/in/a.txt"
	wait_log "$(added a.txt)"
	rm -rf "$D/in"
	wait_server_exit 30
	assert_equal "$status" 8
	grep -qF "the watched directory $D/in was removed: no more files are watched; shutting down" "$SERVER_LOG"
	mkdir "$D/w"
	start_server -v --watch "$D/w"
	wait_log 'watching '
	mv "$D/w" "$D/w2"
	wait_server_exit 30
	assert_equal "$status" 8
	grep -qF "the watched directory $D/w was moved away" "$SERVER_LOG"
}

@test "watch: a running job finishes after the directory is removed; waiting ones stay in the journal" {
	start_server -v --watch "$D/in" -o "$D/out"
	wait_log 'watching '
	printf 'alpha\n' >"$D/in/a.txt"
	printf 'beta\n' >"$D/in/b.txt"
	wait_log "$(added b.txt)"
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	rm -rf "$D/in"
	wait_log 'shutdown asked by --watch (its directory is gone): 1 job running, 1 waiting'
	run -0 jq-put "$SERVER" "$HANDLE" "$D/job"
	wait_server_exit 30
	assert_equal "$status" 8
	assert_equal "$(cat "$D/out/a.txt.result")" alpha
}

@test "watch: added jobs' results land in the watched directory and are not served; names under it are the watch's" {
	start_server -v --watch "$D/in"
	wait_log 'watching '
	run -0 jq-put --add "$SERVER" --name added <<<'data'
	assert_output 1
	run -4 jq-put --add "$SERVER" --name "$IN/x.txt" <<<'data'
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	assert_equal "$(cat "$D/in/added.result")" DATA
	printf 'alpha\n' >"$D/in/a.txt"
	wait_log "$(added a.txt)"
	stat_is 'names == ["added", "a.txt"]'
}

@test "watch: bad command lines are refused before listening" {
	printf 'x\n' >"$D/in/a.txt"
	serve_refused 2 --watch "$D/in" "$D/in/a.txt"
	[[ $stderr == *'--watch serves the files of its directory'* ]]
	serve_refused 2 --watch-match '*.txt'
	serve_refused 8 --watch "$D/nothere"
	[[ $stderr == *"--watch $D/nothere: No such file or directory"* ]]
	serve_refused 2 --watch "$D/in/a.txt"
	[[ $stderr == *'not a directory'* ]]
	serve_refused 2 --watch "$D/in" -r '{stem}.{ext}'
	[[ $stderr == *'names any file could have'* ]]
	# with the results elsewhere, the same template is fine
	start_server --watch "$D/in" -o "$D/out" -r '{stem}.{ext}'
	wait_log 'watching '
}

@test "watch: two files that would give one result: the second is not served, and the log says whose result it is" {
	start_server -v --watch "$D/in" -o "$D/out" -r '{stem}.out'
	wait_log 'watching '
	printf 'wav\n' >"$D/in/a.wav"
	wait_log "$(added a.wav)"
	printf 'flac\n' >"$D/in/a.flac"
	wait_log "$IN/a.flac: not served: its result $D/out/a.out would be the result of job 1 ($IN/a.wav)"
	printf 'b\n' >"$D/in/b.wav"
	wait_log "$(added b.wav)"
	stat_is 'names == ["a.wav", "b.wav"]'
}

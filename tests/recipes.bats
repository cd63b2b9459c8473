#!/usr/bin/env bats
# share/recipes/: every recipe is run here, or checked as far as a machine without the software
# it is for allows, and the README lists them all.
#
#   run for real      find-serve, xargs-add, xargs-workers, ssh-workers (a private sshd on
#                     127.0.0.1, two host names for it), crontab (its line run twice as cron
#                     runs it), wav-to-mp3 (ffmpeg), scale-images (ImageMagick)
#   verified, run     the systemd units: systemd-analyze verify (no systemd needed as PID 1),
#                     then their ExecStart/ExecStop lines run here as systemd would (specifiers
#                     filled in, paths moved under the test's directory)
#   stand-ins         slurm-workers.sbatch: a stand-in srun that starts the step once per node
#                     on this machine; htcondor-workers.sub: a stand-in condor_submit (macros,
#                     -append, $ENV(), quoted arguments and environment, queue N) that runs
#                     the workers here; kubernetes.yaml: parsed with python3's yaml, its parts
#                     checked to fit, and its init container and workers run here
#   not run           sbatch, condor_submit, kubectl: they need a controller, a pool, a
#                     cluster (and htcondor is not in Debian 12)
# (shellcheck runs over every script of share/recipes in make check's shellcheck step)

# shellcheck disable=SC2154 # $stderr: set by bats' run --separate-stderr
bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/sshd
	jq_setup worker
	R=$(cd "$BATS_TEST_DIRNAME/../share/recipes" && pwd)
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
}

teardown() {
	# a failed ssh test leaves its commands behind: sshd started them, outside every process
	# group the helpers kill; end those still running by the pids they wrote
	local p
	for p in "${M:-/nowhere}"/pid.*; do
		[[ -f $p ]] || continue
		grep -qF "$M" "/proc/${p##*.}/cmdline" 2>/dev/null && kill -KILL "${p##*.}"
	done
	jq_teardown
}

# wavs DIR N: N short WAV files DIR/tone N.wav (sox)
wavs() {
	local i
	mkdir -p "$1"
	for ((i = 1; i <= $2; i++)); do
		sox -n -r 22050 -c 1 "$1/tone $i.wav" synth 0.2 sine $((200 + 50 * i))
	done
}

# is_mp3 FILE: FILE starts with an ID3 tag or an MPEG audio frame header
is_mp3() {
	local magic
	magic=$(od -A n -t x1 -N 3 "$1" | tr -d ' \n')
	case $magic in
	494433* | ff[ef]?*) return 0 ;;
	esac
	echo "$1 is not an MP3 (starts with $magic)" >&2
	return 1
}

# wait_until SECONDS CMD...: run CMD every 0.05 s until it succeeds; fail after SECONDS
wait_until() {
	local secs=$1 i
	shift
	for ((i = 0; i <= secs * 20; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "wait_until: '$*' still false after ${secs}s" >&2
	return 1
}

# count_files GLOB...: print how many of the GLOBs name existing files
count_files() {
	local f n=0
	for f; do [[ -e $f ]] && n=$((n + 1)); done
	echo "$n"
}

# install_tree DESTDIR PREFIX: make install of this build into DESTDIR (man pages and all)
install_tree() {
	make -s -C "$TOP" install BUILDDIR="$BUILDDIR" DESTDIR="$1" PREFIX="$2" >/dev/null
}

# ---------------------------------------------------------------------------- find, xargs

@test "find-serve: every matching file of a tree, whatever bytes its name holds, and nothing else" {
	local t=$D/tree f
	mkdir -p "$t/sub dir"
	for f in "a b.txt" $'new\nline.txt' "-dash.txt" "q'uote \"x\".txt" "sub dir/deep.txt"; do
		printf 'content of %s\n' "$f" >"$t/$f"
	done
	echo other >"$t/skip.dat"
	jq_bg sh "$R/find-serve" "$t" '*.txt' -l 127.0.0.1:0 --addr-file "$D/addr" >"$D/serve.log" 2>&1
	SERVER_PID=$!
	wait_for_file "$D/addr"
	run -0 jq-run -j 2 "$(head -n 1 "$D/addr")" -- tr a-z A-Z
	wait_server_exit
	assert_equal "$status" 0
	for f in "a b.txt" $'new\nline.txt' "-dash.txt" "q'uote \"x\".txt" "sub dir/deep.txt"; do
		assert_equal "$(cat "$t/$f.result")" "$(tr a-z A-Z <"$t/$f")"
	done
	assert_file_not_exist "$t/skip.dat.result"
	# run again: every result is up to date, so it exits 0 at once without listening
	run -0 sh "$R/find-serve" "$t" '*.txt' -l 127.0.0.1:0 --addr-file "$D/addr2"
	assert_output --partial "already have results"
	assert_file_not_exist "$D/addr2"
}

@test "xargs-add: feeds a server started with no files, again only new names; jq-put --shutdown ends it" {
	local box=$D/inbox ids1 ids2
	mkdir -p "$box" "$D/out"
	echo a >"$box/a.txt"
	echo b >"$box/b b.txt"
	echo c >"$box/c.dat"
	start_server -o "$D/out"
	run -0 sh "$R/xargs-add" "$SERVER" "$box" '*.txt'
	assert_equal "${#lines[@]}" 2
	ids1=$(printf '%s\n' "${lines[@]}" | sort)
	echo d >"$box/d.txt"
	# the same directory again: the two old names answer with their ids, one job is new
	run -0 sh "$R/xargs-add" "$SERVER" "$box" '*.txt'
	assert_equal "${#lines[@]}" 3
	ids2=$(printf '%s\n' "${lines[@]}" | sort)
	assert_equal "$(comm -23 <(echo "$ids1") <(echo "$ids2"))" ''
	run -0 jq-stat --json "$SERVER"
	echo "$output" >"$D/stat.json"
	json_file_check "$D/stat.json" 'j["jobs"]["total"] == 3'
	jq_bg jq-run "$SERVER" -- tr a-z A-Z
	local worker=$!
	wait_for_file "$D/out/d.txt.result"
	wait_for_file "$D/out/a.txt.result"
	wait_for_file "$D/out/b b.txt.result"
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	assert_equal "$status" 0
	wait_pid "$worker" 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/out/b b.txt.result")" B
	assert_file_not_exist "$D/out/c.dat.result"
}

@test "xargs-workers: N jq-take/jq-put loops run at once by xargs -P; a failing command fails its job with its status" {
	make_files "$D/in" 6
	start_server "$D"/in/*.dat
	# each of the first three jobs waits until three workers have one: only -P 3 gets past
	# shellcheck disable=SC2016 # for the workers' sh
	run -0 sh "$R/xargs-workers" 3 "$SERVER" '
		d=${1%/in}
		touch "$M/${d##*/}"
		i=0
		while [ "$(ls "$M" | wc -l)" -lt 3 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
		tr a-z A-Z <"$1" >"$2"'
	wait_server_exit 30
	assert_equal "$status" 0
	assert_equal "$(count_files "$M"/*)" 3
	local f
	for f in "$D"/in/*.dat; do
		assert_equal "$(cat "$f.result")" "$(tr a-z A-Z <"$f")"
	done

	make_files "$D/in2" 2
	start_server "$D"/in2/*.dat
	run -0 sh "$R/xargs-workers" 2 "$SERVER" 'exit 7'
	wait_server_exit 30
	assert_equal "$status" 1
	# a command that says it succeeded but wrote nothing fails its job too
	make_files "$D/in3" 1
	start_server "$D"/in3/*.dat
	run -0 sh "$R/xargs-workers" 1 "$SERVER" 'true'
	wait_server_exit 30
	assert_equal "$status" 1
	assert_file_not_exist "$D/in3/file0001.dat.result"
}

@test "xargs-workers: a worker that cannot reach the server makes xargs fail, saying why" {
	run -123 sh "$R/xargs-workers" 2 "127.0.0.1:$(free_tcp_port)" 'cat "$1" >"$2"'
	assert_output --partial "xargs-workers: worker 1: jq-take exited 6"
	run -2 sh "$R/xargs-workers" 0 x 'true'
}

# ---------------------------------------------------------------------------- ssh

# ssh_workers ARG...: share/recipes/ssh-workers ARG... through the private sshd (hosts node1
# and node2 in $D/ssh_config), with this build's jq-run on the "remote" side
ssh_workers() {
	env JQ_SSH="ssh -F $D/ssh_config" JQ_RUN="$(command -v jq-run)" bash "$R/ssh-workers" "$@"
}

# ssh_setup: the private sshd, two host names for it, and a host list naming both
ssh_setup() {
	sshd_require
	start_sshd 2>>"$D/sshd.log"
	ssh_config_file node1 node2
	printf '# the nodes\nnode1\n  node2   # the second\n\n' >"$D/hosts"
}

@test "ssh-workers: a worker on every listed host, every word of the command arriving as it was typed" {
	ssh_setup
	local i f
	mkdir -p "$D/in"
	for i in 1 2 3 4; do
		printf 'data %d\n' "$i" >"$D/in/it's a \"test\" $i.txt"
	done
	start_server "$D"/in/*.txt
	# shellcheck disable=SC2016 # words that must reach the remote sh unexpanded
	run -0 ssh_workers "$D/hosts" -j 1 --token-file "$JQ_TOKEN_FILE" "$SERVER" -- \
		sh -c 'tr a-z A-Z <"$1"; shift; printf "%s|" "$@"' sh '{in}' \
		'two  words' '$HOME `id` $(id)' 'a"b' "it's" '*' $'line\nbreak' ''
	assert_line --partial "node1: jq-run: "
	assert_line --partial "node2: jq-run: "
	wait_server_exit 30
	assert_equal "$status" 0
	# shellcheck disable=SC2016
	local want='two  words|$HOME `id` $(id)|a"b|it'\''s|*|line
break||'
	for f in "$D"/in/*.txt; do
		assert_equal "$(cat "$f.result")" "$(tr a-z A-Z <"$f")"$'\n'"$want"
	done
	# a host list that cannot be read, or names no host
	run -8 ssh_workers "$D/nowhere" "$SERVER" -- true
	assert_output --partial "ssh-workers: $D/nowhere: cannot read"
	printf '# nothing\n\n' >"$D/empty"
	run -2 ssh_workers "$D/empty" "$SERVER" -- true
	assert_output --partial "no hosts"
}

# n_files N GLOB...: true when N of the GLOBs name existing files (globbed when called)
n_files() {
	local n=$1
	shift
	[[ $(count_files "$@") -eq $n ]]
}

# n_lines N PATTERN FILE: true when N lines of FILE match the grep PATTERN
n_lines() {
	[[ $(grep -c -- "$2" "$3") -eq $1 ]]
}

# ssh_held_jobs: start the server with 4 jobs and ssh-workers on node1 and node2 (-v, one
# slot each) with a command that records its pid in $M and waits for a line from the FIFO
# $M/gate; return once both have a job.  ssh-workers runs as a terminal's foreground job
# would: SIGINT at its default, in a process group of its own, SWG, to which ctrl_c sends a
# SIGINT as the terminal's Ctrl-C does (to every process of the group: the script, its ssh
# processes and its output prefixers).
ssh_held_jobs() {
	ssh_setup
	make_files "$D/in" 4
	mkfifo "$M/gate"
	start_server "$D"/in/*.dat
	# shellcheck disable=SC2016 # for the remote sh
	jq_bg env --default-signal=INT JQ_SSH="ssh -F $D/ssh_config" JQ_RUN="$(command -v jq-run)" \
		setsid bash "$R/ssh-workers" "$D/hosts" -v -j 1 --token-file "$JQ_TOKEN_FILE" "$SERVER" -- \
		sh -c 'echo $$ >"$0/pid.$$"; read -r _ <"$0/gate"; tr a-z A-Z <"$1"' "$M" '{in}' \
		>"$D/sw.log" 2>&1
	SW=$!
	# (n_files globs each time it is called: wait_until runs it again and again)
	wait_until 60 eval 'n_files 2 "$M"/pid.*'
	# setsid, not a group leader under timeout, made its own session without a fork
	SWG=$(pgrep -P "$SW")
	[[ $(ps -o pgid= -p "$SWG" | tr -d ' ') == "$SWG" ]]
}

# ctrl_c: a terminal's Ctrl-C to ssh-workers's process group
ctrl_c() {
	kill -INT -- "-$SWG"
}

@test "ssh-workers: a host without jq-run (exit 127) is told to set JQ_RUN" {
	ssh_setup
	run --separate-stderr env JQ_SSH="ssh -F $D/ssh_config" JQ_RUN=/nonexistent/jq-run \
		bash "$R/ssh-workers" "$D/hosts" 127.0.0.1:1 -- true
	assert_equal "$status" 1
	[[ $stderr == *"node1: exit status 127: /nonexistent/jq-run not found there (the PATH of a non-interactive ssh session); set JQ_RUN=/path/to/jq-run"* ]] ||
		fail "stderr: $stderr"
}

@test "ssh-workers: Ctrl-C stops every worker taking jobs; the running ones finish and deliver" {
	ssh_held_jobs
	ctrl_c
	# both remote jq-runs have had their SIGTERM
	wait_until 30 n_lines 2 'jq-run: stopping: running jobs finish first' "$D/sw.log"
	grep -q '^ssh-workers: stopping 2 worker(s)' "$D/sw.log"
	run ! _jq_exited "$SW"
	# let the two running jobs finish
	echo go >"$M/gate"
	wait_pid "$SW" 60
	assert_equal "$status" 130
	run -0 jq-stat --json "$SERVER"
	echo "$output" >"$D/stat.json"
	json_file_check "$D/stat.json" 'j["jobs"]["done"] == 2' 'j["jobs"]["waiting"] == 2' \
		'j["jobs"]["running"] == 0' 'len(j["workers"]) == 0'
	assert_equal "$(count_files "$D"/in/*.result)" 2
	# exit status 9, a worker stopped by its signal, is no failure here
	run ! grep -q 'exit status' "$D/sw.log"
}

@test "ssh-workers: a second Ctrl-C kills the running commands and hands their jobs back" {
	ssh_held_jobs
	ctrl_c
	wait_until 30 n_lines 2 'jq-run: stopping: running jobs finish first' "$D/sw.log"
	ctrl_c
	wait_pid "$SW" 60
	assert_equal "$status" 130
	grep -q '^ssh-workers: killing the running jobs' "$D/sw.log"
	run -0 jq-stat --json "$SERVER"
	echo "$output" >"$D/stat.json"
	json_file_check "$D/stat.json" 'j["jobs"]["done"] == 0' 'j["jobs"]["waiting"] == 4' \
		'j["jobs"]["running"] == 0' 'len(j["workers"]) == 0'
	local p
	for p in "$M"/pid.*; do
		run ! kill -0 "${p##*.}"
	done
}

# ---------------------------------------------------------------------------- cron

# cron_run: the command line of share/recipes/crontab, run as cron runs it: env -i with cron's
# own variables (SHELL=/bin/sh, HOME and LOGNAME from the password file, PATH=/usr/bin:/bin),
# then the crontab's variable lines, then $SHELL -c COMMAND.  The paths of the recipe are moved
# under $D: /srv/jq -> $D/srv, /usr/local/bin -> $D/root/usr/local/bin (make install DESTDIR),
# the port 7117 -> $CRON_PORT on 127.0.0.1, and HOME is $D/home.
cron_run() {
	local line vars=() cmd='' shell=/bin/sh
	while IFS= read -r line; do
		case $line in
		'#'* | '') ;;
		[A-Za-z_]*=*)
			line=${line//\/usr\/local\/bin/$D/root/usr/local/bin}
			vars+=("$line")
			[[ $line != SHELL=* ]] || shell=${line#SHELL=}
			;;
		*)
			[[ -z $cmd ]] || { echo "cron_run: more than one command line" >&2; return 1; }
			cmd=$line
			;;
		esac
	done <"$R/crontab"
	# the five time fields, then the command
	read -r _ _ _ _ _ cmd <<<"$cmd"
	[[ $cmd != *%* ]] || { echo "cron_run: a % that cron would turn into a newline" >&2; return 1; }
	[[ $cmd == *" -l :7117"* && $cmd == */srv/jq/* ]] || { echo "cron_run: the recipe changed: $cmd" >&2; return 1; }
	cmd=${cmd//\/srv\/jq/$D/srv}
	cmd=${cmd//-l :7117/-l 127.0.0.1:$CRON_PORT}
	env -i SHELL=/bin/sh HOME="$D/home" LOGNAME="$(id -un)" PATH=/usr/bin:/bin "${vars[@]}" \
		"$shell" -c "$cmd"
}

# cron_worker: the worker of the recipe's comments, on the cron server's address
cron_worker() {
	jq_bg jq-run --keep --token-file "$D/home/.config/jq/token" "127.0.0.1:$CRON_PORT" -- \
		ffmpeg -nostdin -loglevel error -i '{in}' '{out.mp3}' >>"$D/worker.log" 2>&1
	WORKER=$!
}

@test "crontab: run twice as cron runs it, it serves only what came since; a run still serving makes the next a no-op" {
	command -v ffmpeg sox flock
	grep -q '^PATH=/usr/local/bin:/usr/bin:/bin$' "$R/crontab"
	install_tree "$D/root" /usr/local
	mkdir -p "$D/srv/in" "$D/srv/mp3" "$D/home"
	CRON_PORT=$(free_tcp_port)
	# (cron_run runs in the background too, through jq_bg: it sees exported variables only)
	export R D CRON_PORT
	# an empty directory: nothing to serve, no error, not a word (cron mails any output)
	run -0 --separate-stderr cron_run
	assert_output ''
	assert_equal "$stderr" ''
	wavs "$D/srv/in" 2
	# the worker may start before the server, and waits for each next one
	cron_worker
	run -0 --separate-stderr cron_run
	assert_output ''
	assert_equal "$stderr" ''
	is_mp3 "$D/srv/mp3/tone 1.mp3"
	is_mp3 "$D/srv/mp3/tone 2.mp3"
	local before
	before=$(stat -c '%i %Y' "$D/srv/mp3/tone 1.mp3" "$D/srv/mp3/tone 2.mp3")

	# a file comes in; the next run serves it and leaves the others alone (a result stored
	# again would be a new file, a new inode)
	sox -n -r 22050 -c 1 "$D/srv/in/new one.wav" synth 0.2 sine 500
	run -0 --separate-stderr cron_run
	assert_output ''
	assert_equal "$stderr" ''
	is_mp3 "$D/srv/mp3/new one.mp3"
	assert_equal "$(stat -c '%i %Y' "$D/srv/mp3/tone 1.mp3" "$D/srv/mp3/tone 2.mp3")" "$before"
	# nothing new: it exits at once, without listening
	run -0 --separate-stderr cron_run
	assert_output ''
	assert_equal "$stderr" ''

	# a run that is still serving when the next is due: the next one leaves it alone
	kill -TERM "$WORKER"
	wait_pid "$WORKER" 30
	assert_equal "$status" 9
	sox -n -r 22050 -c 1 "$D/srv/in/late.wav" synth 0.2 sine 600
	jq_bg cron_run
	local first=$!
	wait_until 30 jq-stat --token-file "$D/home/.config/jq/token" "127.0.0.1:$CRON_PORT"
	run -0 --separate-stderr cron_run
	assert_output ''
	assert_equal "$stderr" ''
	run ! _jq_exited "$first"
	cron_worker
	wait_pid "$first" 60
	assert_equal "$status" 0
	is_mp3 "$D/srv/mp3/late.mp3"

	# a job that fails: the run says so, the one thing cron mails
	echo "not a wav" >"$D/srv/in/broken.wav"
	run -0 --separate-stderr cron_run
	assert_output "jq-serve: exit status 1: a job failed; see $D/srv/jobs.log"
	assert_equal "$stderr" ''
	grep -q 'broken.wav' "$D/srv/jobs.log"
	assert_file_not_exist "$D/srv/mp3/broken.mp3"
}

@test "crontab: when jq-serve cannot even run, the line gives its exit status and does not say a job failed" {
	command -v flock
	install_tree "$D/root" /usr/local
	mkdir -p "$D/srv/in" "$D/srv/mp3" "$D/home"
	printf 'x\n' >"$D/srv/in/a.wav"
	CRON_PORT=$(free_tcp_port)
	# not where the crontab's PATH looks: flock cannot execute it
	rm "$D/root/usr/local/bin/jq-serve"
	run -0 --separate-stderr cron_run
	assert_output --regexp '^jq-serve: exit status [0-9]+: it did not run or stopped early; see the message above and jq-serve\(1\), EXIT STATUS$'
	refute_output --partial 'exit status 1:'
	refute_output --partial 'a job failed'
	assert_equal "$stderr" 'flock: failed to execute jq-serve: No such file or directory'
}

# ---------------------------------------------------------------------------- systemd

# unit_value FILE KEY SPEC...: print, NUL-separated, the words of the value of KEY in the unit
# FILE as systemd reads them: %X specifiers filled in from SPECs "%X=VALUE", then SPECs
# "OLD=>NEW" replacing text, $$ made $, then split into words with systemd's quoting (shell-like
# quotes).  Environment= values are split the same way, one NAME=VALUE a word; more than one
# line of KEY adds up.  A lone $ (systemd's own variable expansion) or an unknown specifier is
# an error: the stand-in does not do those.
unit_value() {
	python3 - "$@" <<'EOF'
import re, shlex, sys
path, key, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
spec, repl = {}, []
for s in specs:
    if s.startswith("%"):
        spec[s[1]] = s[3:]
    else:
        old, new = s.split("=>", 1)
        repl.append((old, new))
words = []
for raw in open(path, encoding="utf-8"):
    line = raw.strip()
    if not line or line[0] in "#;[":
        continue
    k, _, v = line.partition("=")
    if k.strip() != key:
        continue
    def fill(m):
        c = m.group(1)
        if c == "%":
            return "%"
        if c not in spec:
            sys.exit("unit_value: %s: no value for the specifier %%%s" % (path, c))
        return spec[c]
    v = re.sub(r"%(.)", fill, v.strip())
    for old, new in repl:
        v = v.replace(old, new)
    if "$" in v.replace("$$", ""):
        sys.exit("unit_value: %s: the stand-in does not expand variables: %s" % (path, v))
    words += shlex.split(v.replace("$$", "$"))
if not words:
    sys.exit("unit_value: %s: no %s=" % (path, key))
sys.stdout.write("".join(w + "\0" for w in words))
EOF
}

# units_verify DIR USER: systemd-analyze verify of jq-serve.service and an instance of
# jq-run@.service, installed in DIR; with USER=--user as user units (HOME=$D/home), else as
# system units under --root=$D/root (which holds the installed tools, /bin/sh and a copy of
# this machine's system units for the targets they name).  Documentation= is checked too:
# man finds the installed pages through MANPATH.  Any message at all fails.
units_verify() {
	local dir=$1 user=$2
	command -v systemd-analyze || {
		echo "systemd-analyze is not installed (package systemd: sh share/setup check)" >&2
		return 1
	}
	# run from an empty directory: verify looks for the units in the current one first
	mkdir -p "$D/empty"
	cd "$D/empty" || return 1
	# (an instance name holding a : is read by verify as FILE:ALIAS: the address here has none)
	if [[ $user == --user ]]; then
		mkdir -m 0700 "$D/xdg"
		run env HOME="$D/home" XDG_RUNTIME_DIR="$D/xdg" MANPATH="$D/home/.local/share/man" \
			systemd-analyze --user verify jq-serve.service jq-run@server.example.service
	else
		run env MANPATH="$D/root/usr/local/share/man" systemd-analyze --root="$D/root" verify \
			jq-serve.service jq-run@server.example.service
	fi
	cd - >/dev/null || return 1
	assert_success
	assert_output ''
	[[ -d $dir ]]
}

# units_run UNITDIR SOCKET RESULTS TOKEN ENV SPEC...: the ExecStart and ExecStop lines of
# jq-serve.service and jq-run@.service in UNITDIR, run here: the server (its environment ENV,
# a space-separated NAME=VALUE list, and the unit's Environment=), jobs added on its UNIX
# socket SOCKET, a worker for its TCP address (instance %I) that makes RESULTS/tone N.mp3, then
# systemctl stop of each: SIGTERM to the worker (exit 9, a success for the unit), and the
# server's ExecStop, which must wait for the server's end (a job still held keeps it).  The
# token made by the server must be TOKEN.  SPECs as for unit_value; the unit's port 7117
# becomes a free one of 127.0.0.1.
units_run() {
	local dir=$1 sock=$2 results=$3 token=$4 env=$5
	shift 5
	local port senv=() start=() stop=() wenv=() wstart=() base
	port=$(free_tcp_port)
	set -- "$@" "-l :7117=>-l 127.0.0.1:$port"
	read -r -a base <<<"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin $env"
	if grep -q '^Environment=' "$dir/jq-serve.service"; then
		mapfile -d '' -t senv < <(unit_value "$dir/jq-serve.service" Environment "$@")
	fi
	mapfile -d '' -t start < <(unit_value "$dir/jq-serve.service" ExecStart "$@")
	mapfile -d '' -t stop < <(unit_value "$dir/jq-serve.service" ExecStop "$@")
	[[ ${#start[@]} -gt 0 && ${#stop[@]} -gt 0 ]]
	jq_bg env -i "${base[@]}" "${senv[@]}" "${start[@]}" >"$D/serve.log" 2>&1
	SERVER_PID=$!
	wait_until 30 test -S "$sock"
	[[ $(stat -c %a "$token") == 600 ]]

	wavs "$D/wav" 2
	run -0 jq-put --add "unix:$sock" "$D"/wav/*.wav
	assert_equal "${#lines[@]}" 2
	set -- "$@" "%i=127.0.0.1:$port" "%I=127.0.0.1:$port"
	if grep -q '^Environment=' "$dir/jq-run@.service"; then
		mapfile -d '' -t wenv < <(unit_value "$dir/jq-run@.service" Environment "$@")
	fi
	mapfile -d '' -t wstart < <(unit_value "$dir/jq-run@.service" ExecStart "$@")
	jq_bg env -i "${base[@]}" "${wenv[@]}" "${wstart[@]}" >"$D/worker.log" 2>&1
	local worker=$!
	wait_for_file "$results/tone 1.mp3"
	wait_for_file "$results/tone 2.mp3"
	is_mp3 "$results/tone 1.mp3"
	# systemctl stop jq-run@...: SIGTERM to jq-run alone (KillMode=mixed); 9 is in
	# SuccessExitStatus
	grep -q '^KillMode=mixed$' "$dir/jq-run@.service"
	grep -q '^SuccessExitStatus=9$' "$dir/jq-run@.service"
	kill -TERM "$worker"
	wait_pid "$worker" 30
	assert_equal "$status" 9

	# systemctl stop jq-serve: a job held by a worker keeps the server, and so ExecStop, going
	echo held >"$D/held.txt"
	run -0 jq-put --add "unix:$sock" "$D/held.txt"
	local handle
	handle=$(jq-take -o "$D/held.in" "unix:$sock")
	jq_bg env -i "${base[@]}" "${senv[@]}" MAINPID="$SERVER_PID" "${stop[@]}" >"$D/stop.log" 2>&1
	local stopper=$!
	wait_until 30 grep -q 'shutdown asked' "$D/serve.log"
	run ! _jq_exited "$stopper"
	run ! _jq_exited "$SERVER_PID"
	run -0 jq-put "unix:$sock" "$handle" "$D/held.in"
	wait_server_exit 30
	assert_equal "$status" 0
	wait_pid "$stopper" 30
	assert_equal "$status" 0
	assert_equal "$(cat "$results/held.mp3")" held
}

@test "systemd: jq-serve.service and jq-run@.service pass systemd-analyze verify, and run as their lines say" {
	command -v ffmpeg sox
	local units=$D/root/etc/systemd/system
	install_tree "$D/root" /usr/local
	mkdir -p "$units" "$D/root/lib/systemd/system" "$D/root/bin"
	cp -a /lib/systemd/system/. "$D/root/lib/systemd/system/"
	cp /bin/sh "$D/root/bin/sh"
	cp "$R"/systemd/*.service "$units/"
	units_verify "$units" ''
	# StateDirectory=jq, RuntimeDirectory=jq, ReadWritePaths: made as systemd (or the admin) does
	mkdir -p "$D/lib"
	mkdir -m 0700 "$D/lib/jq"
	mkdir -p "$D/run/jq" "$D/srv/results"
	units_run "$units" "$D/run/jq/jq.sock" "$D/srv/results" "$D/lib/jq/token" \
		"HOME=$D/lib/jq" "%S=$D/lib" "%t=$D/run" "%H=$(hostname)" \
		"/usr/local/bin/=>$D/root/usr/local/bin/" "/srv/jq/results=>$D/srv/results"
}

@test "systemd: make install PREFIX=/opt/x puts units that name /opt/x/bin, and they verify" {
	command -v systemd-analyze
	install_tree "$D/root" /opt/x
	local doc=$D/root/opt/x/share/doc/jq-tools/recipes/systemd u
	for u in "$doc"/jq-serve.service "$doc"/jq-run@.service "$doc"/user/*.service; do
		# every tool the unit runs is named by its installed path, and none by another
		grep -q '/opt/x/bin/jq-' "$u"
		run grep -E '(/usr/local/bin|%h/\.local/bin)/jq-' "$u"
		assert_failure
	done
	local units=$D/root/etc/systemd/system
	mkdir -p "$units" "$D/root/lib/systemd/system" "$D/root/bin"
	cp -a /lib/systemd/system/. "$D/root/lib/systemd/system/"
	cp /bin/sh "$D/root/bin/sh"
	cp "$doc"/*.service "$units/"
	mkdir -p "$D/empty"
	cd "$D/empty"
	run env MANPATH="$D/root/opt/x/share/man" systemd-analyze --root="$D/root" verify \
		jq-serve.service jq-run@server.example.service
	cd - >/dev/null
	assert_success
	assert_output ''
}

@test "systemd: the user units pass systemd-analyze --user verify, and run as their lines say" {
	command -v ffmpeg sox
	local units=$D/home/.config/systemd/user
	install_tree "" "$D/home/.local"
	mkdir -p "$units" "$D/home/jq/results" "$D/run"
	cp "$R"/systemd/user/*.service "$units/"
	units_verify "$units" --user
	units_run "$units" "$D/run/jq.sock" "$D/home/jq/results" "$D/home/.config/jq/token" \
		"HOME=$D/home" "%h=$D/home" "%t=$D/run" "%H=$(hostname)"
}

# ---------------------------------------------------------------------------- batch schedulers

# srun_standin: $D/bin/srun, a stand-in that runs the step's command once per node (--nodes),
# all on this machine, and exits with the highest status, as srun does; an option it does not
# know fails it, so that a change of the recipe's srun line is noticed here
srun_standin() {
	mkdir -p "$D/bin"
	cat >"$D/bin/srun" <<-'EOF'
		#!/bin/bash
		nodes=1
		while [[ $1 == -* ]]; do
			case $1 in
			--nodes=*) nodes=${1#*=} ;;
			--ntasks-per-node=1 | --cpus-per-task=* | --kill-on-bad-exit=0) ;;
			*) echo "srun stand-in: unknown option $1" >&2; exit 2 ;;
			esac
			shift
		done
		pids=()
		for ((i = 0; i < nodes; i++)); do
			SLURM_NODEID=$i SLURM_PROCID=$i "$@" &
			pids+=("$!")
		done
		rc=0
		for p in "${pids[@]}"; do
			wait "$p" || { s=$?; ((s > rc)) && rc=$s; }
		done
		exit "$rc"
	EOF
	chmod +x "$D/bin/srun"
}

@test "slurm-workers.sbatch: serves a directory from the first node and runs one jq-run per node (stand-in srun)" {
	command -v ffmpeg sox
	srun_standin
	wavs "$D/wav" 4
	grep -q '^#SBATCH --ntasks-per-node=1$' "$R/slurm-workers.sbatch"
	cd "$D"
	run -0 env PATH="$D/bin:$PATH" SLURM_JOB_ID=7 SLURM_JOB_NUM_NODES=2 SLURM_CPUS_PER_TASK=2 \
		SLURM_SUBMIT_DIR="$D" SLURMD_NODENAME=127.0.0.1 bash "$R/slurm-workers.sbatch" "$D/wav"
	cd - >/dev/null
	assert_line --regexp '^jq-workers: serving .*/wav at 127\.0\.0\.1:[0-9]+$'
	assert_line "jq-workers: the workers exited with status 0"
	local i
	for i in 1 2 3 4; do
		is_mp3 "$D/wav/mp3/tone $i.mp3"
	done
	assert_file_not_exist "$D/jq-workers-7.addr"

	# only workers, for a server elsewhere
	wavs "$D/wav2" 2
	start_server -o "$D/mp3" -r '{stem}.mp3' "$D"/wav2/*.wav
	run -0 env PATH="$D/bin:$PATH" JQ_SERVER="$SERVER" SLURM_JOB_NUM_NODES=2 \
		SLURM_CPUS_PER_TASK=1 bash "$R/slurm-workers.sbatch"
	wait_server_exit 30
	assert_equal "$status" 0
	is_mp3 "$D/mp3/tone 1.mp3"
	run -2 env PATH="$D/bin:$PATH" bash "$R/slurm-workers.sbatch"
	assert_output --partial "give a directory to serve"
}

# condor_standin FILE DIR APPEND...: a stand-in for condor_submit and the pool: reads the submit
# FILE (macros, expanded when used, $(Cluster) 1 and $(Process); $ENV(NAME); the quoted "new"
# syntax of arguments and environment; queue N) with the APPEND commands after its own lines,
# as condor_submit -append puts them, and runs each of the N jobs here at once, in DIR, with
# the job's environment only (and PATH), its output and error to the files named; exits with
# the highest exit status.  The executable /usr/local/bin/jq-run is taken from PATH instead.
condor_standin() {
	python3 - "$@" <<'EOF'
import os, re, subprocess, sys
path, wdir, appends = sys.argv[1], sys.argv[2], sys.argv[3:]
lines, queue = [], None
for raw in open(path, encoding="utf-8"):
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    if re.match(r"queue\b", line, re.I):
        queue = line[5:].strip() or "1"
        break
    lines.append(line)
if queue is None:
    sys.exit("condor stand-in: no queue command")
macros = {}
for line in lines + appends:
    k, sep, v = line.partition("=")
    if not sep:
        sys.exit("condor stand-in: not NAME = VALUE: " + line)
    macros[k.strip().lower()] = v.strip()

def expand(v, proc):
    def one(m):
        name = m.group(1)
        if name.startswith("ENV(") or name.startswith("env("):
            return os.environ[name[4:-1]]
        n = name.lower()
        if n == "cluster":
            return "1"
        if n == "process":
            return str(proc)
        if n not in macros:
            sys.exit("condor stand-in: undefined macro $(%s)" % name)
        return expand(macros[n], proc)
    v = re.sub(r"\$ENV\(([A-Za-z_]+)\)", lambda m: os.environ[m.group(1)], v)
    return re.sub(r"\$\(([^()]+)\)", one, v)

def split_new(s):
    # the new syntax: all in double quotes, "" a literal ", words split on blanks, a word in
    # single quotes may hold blanks, '' in it a literal '
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        sys.exit("condor stand-in: not in the quoted syntax: " + s)
    s = s[1:-1].replace('""', '"')
    words, cur, i = [], None, 0
    while i < len(s):
        c = s[i]
        if c in " \t":
            if cur is not None:
                words.append(cur)
                cur = None
            i += 1
            continue
        cur = cur or ""
        if c == "'":
            j = i + 1
            while True:
                k = s.find("'", j)
                if k < 0:
                    sys.exit("condor stand-in: unterminated ' in " + s)
                if s[k + 1:k + 2] == "'":
                    cur += s[j:k] + "'"
                    j = k + 2
                    continue
                cur += s[j:k]
                i = k + 1
                break
            continue
        cur += c
        i += 1
    if cur is not None:
        words.append(cur)
    return words

n = int(expand(queue, 0))
procs = []
for p in range(n):
    exe = expand(macros["executable"], p)
    if exe == "/usr/local/bin/jq-run":
        exe = "jq-run"
    argv = [exe] + split_new(expand(macros["arguments"], p))
    env = {"PATH": os.environ["PATH"]}
    for w in split_new(expand(macros.get("environment", '""'), p)):
        k, _, v = w.partition("=")
        env[k] = v
    out = open(os.path.join(wdir, expand(macros["output"], p)), "w")
    err = open(os.path.join(wdir, expand(macros["error"], p)), "w")
    print("job %d: %s" % (p, " ".join(argv)), flush=True)
    procs.append(subprocess.Popen(argv, env=env, cwd=wdir, stdout=out, stderr=err))
sys.exit(max(pr.wait() for pr in procs))
EOF
}

@test "htcondor-workers.sub: the workers it queues run against a server (stand-in condor_submit)" {
	command -v ffmpeg sox
	wavs "$D/wav" 4
	start_server -o "$D/mp3" -r '{stem}.mp3' "$D"/wav/*.wav
	# the token where the job's HOME=$ENV(HOME) finds it
	mkdir -p "$D/home/.config"
	mkdir -m 0700 "$D/home/.config/jq"
	cp -p "$JQ_TOKEN_FILE" "$D/home/.config/jq/token"
	mkdir -p "$D/condor"
	# (condor_standin is a function: env cannot run it, so HOME is set around it)
	local home=$HOME
	export HOME=$D/home
	run -0 condor_standin "$R/htcondor-workers.sub" "$D/condor" \
		"SERVER = $SERVER" "WORKERS = 2" "JOBS = 1"
	export HOME=$home
	assert_line --regexp '^job 0: jq-run -j 1 --worker condor-1\.0 .* -- ffmpeg .* \{in\} .* \{out\.mp3\}$'
	assert_line --partial "job 1: jq-run -j 1 --worker condor-1.1 "
	wait_server_exit 30
	assert_equal "$status" 0
	local i
	for i in 1 2 3 4; do
		is_mp3 "$D/mp3/tone $i.mp3"
	done
	grep -q 'jq-run: .* attempts\? run' "$D"/condor/jq-workers-1.0.err
}

# k8s_standin FILE DIR SERVER: reads the Kubernetes manifest FILE with python3's yaml, checks
# that its parts fit together (printing what does not), then does what the Job's pods would, in
# DIR: the init container's command, and `parallelism` workers at once, each with the
# container's env ($(VAR) in args expanded as Kubernetes does; fieldRef metadata.name the pod's
# name, resourceFieldRef limits.cpu the CPU limit), JQ_SERVER made SERVER, and the paths of
# the volumes moved under DIR/<volume name>.  Exits with the highest status of the workers.
k8s_standin() {
	python3 - "$@" <<'EOF'
import os, re, subprocess, sys, yaml
path, wdir, server = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d is not None]
trouble = []
def need(cond, what):
    if not cond:
        trouble.append(what)
jobs = [d for d in docs if d.get("kind") == "Job"]
need(len(jobs) == 1 and len(docs) == 1, "one document, a Job")
job = jobs[0]
need(job.get("apiVersion") == "batch/v1", "apiVersion batch/v1")
spec = job["spec"]
pod = spec["template"]["spec"]
n = spec.get("parallelism")
need(isinstance(n, int) and n >= 1, "parallelism a positive number")
need("completions" not in spec, "no completions: the pods pull work until none is left")
need(pod.get("restartPolicy") in ("Never", "OnFailure"), "restartPolicy Never or OnFailure")
if "podFailurePolicy" in spec:
    need(pod.get("restartPolicy") == "Never", "podFailurePolicy needs restartPolicy Never")
vols = {v["name"]: v for v in pod.get("volumes", [])}
(init,) = pod["initContainers"]
(work,) = pod["containers"]
for c in (init, work):
    for m in c.get("volumeMounts", []):
        need(m["name"] in vols, "container %s mounts a volume that exists: %s" % (c["name"], m["name"]))
need(work["command"][0] == "jq-run" and "--" in work["args"], "the worker runs jq-run ... -- COMMAND")
for r in spec.get("podFailurePolicy", {}).get("rules", []):
    need(r["onExitCodes"]["containerName"] == work["name"], "podFailurePolicy names the worker container")
env = {e["name"]: e for e in work.get("env", [])}
for e in env.values():
    ref = e.get("valueFrom", {}).get("resourceFieldRef")
    if ref:
        need(ref["containerName"] == work["name"], "resourceFieldRef names the worker container")
tokenfile = env["JQ_TOKEN_FILE"]["value"]
need(init["command"][-1] == tokenfile, "the init container writes the file JQ_TOKEN_FILE names")
secret_vols = [v for v in vols.values() if "secret" in v]
need(len(secret_vols) == 1 and secret_vols[0]["secret"]["secretName"] == "jq-token",
     "the secret jq-token, as the comment's kubectl create secret makes it")
if trouble:
    sys.exit("kubernetes.yaml: " + "; ".join(trouble))

# the volumes, as directories under DIR: a path in a mount becomes DIR/<volume>/...
def mapper(c):
    mounts = sorted(c.get("volumeMounts", []), key=lambda m: -len(m["mountPath"]))
    def m(s):
        for mt in mounts:
            p = mt["mountPath"].rstrip("/")
            if s == p or s.startswith(p + "/"):
                return os.path.join(wdir, mt["name"]) + s[len(p):]
        return s
    return m
for name in vols:
    os.makedirs(os.path.join(wdir, name), exist_ok=True)
mi = mapper(init)
r = subprocess.run([mi(a) for a in init["command"] + init.get("args", [])])
if r.returncode:
    sys.exit("the init container failed: %d" % r.returncode)
limits = work["resources"]["limits"]
mw = mapper(work)
procs = []
for i in range(n):
    name = "%s-%d" % (job["metadata"]["name"], i)
    penv = {"PATH": os.environ["PATH"], "HOME": wdir}
    for k, e in env.items():
        if "value" in e:
            penv[k] = mw(e["value"])
        elif "fieldRef" in e["valueFrom"]:
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            penv[k] = name
        else:
            res = e["valueFrom"]["resourceFieldRef"]["resource"]
            penv[k] = str(limits[res.split(".", 1)[1]])
    penv["JQ_SERVER"] = server
    def expand(s):
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: penv.get(m.group(1), m.group(0)), s)
    argv = [mw(expand(a)) for a in work["command"] + work["args"]]
    print("pod %s: %s" % (name, " ".join(argv)), flush=True)
    procs.append(subprocess.Popen(argv, env=penv, cwd=wdir))
sys.exit(max(p.wait() for p in procs))
EOF
}

@test "kubernetes.yaml: parses, its parts fit together, and its pods' commands run against a server (stand-in)" {
	command -v ffmpeg sox
	python3 -c 'import yaml' || {
		echo "python3's yaml is missing (python3-yaml: sh share/setup check)" >&2
		return 1
	}
	wavs "$D/wav" 4
	start_server -o "$D/mp3" -r '{stem}.mp3' "$D"/wav/*.wav
	# the secret volume's file, as Kubernetes mounts it (mode 0440)
	mkdir -p "$D/k8s/token-secret"
	cp "$JQ_TOKEN_FILE" "$D/k8s/token-secret/token"
	chmod 0440 "$D/k8s/token-secret/token"
	run -0 k8s_standin "$R/kubernetes.yaml" "$D/k8s" "$SERVER"
	assert_line --regexp '^pod jq-workers-0: jq-run -j 2 --worker jq-workers-0 -- ffmpeg .*\{in\}.*\{out\.mp3\}$'
	assert_line --partial "pod jq-workers-3: jq-run -j 2 --worker jq-workers-3 -- "
	wait_server_exit 30
	assert_equal "$status" 0
	local i
	for i in 1 2 3 4; do
		is_mp3 "$D/mp3/tone $i.mp3"
	done
	# the init container made the token the workers' own, mode 0600
	assert_equal "$(stat -c %a "$D/k8s/token/token")" 600
}

# ---------------------------------------------------------------------------- media

@test "wav-to-mp3: serve a directory, work with ffmpeg; the MP3s land in DIR/mp3, and a second serve has nothing to do" {
	command -v ffmpeg sox
	wavs "$D/wav" 3
	sox -n -r 44100 -c 2 "$D/wav/-stereo 'quoted'.wav" synth 0.3 sine 440
	echo "not a wav" >"$D/wav/notes.txt"
	jq_bg sh "$R/wav-to-mp3" serve "$D/wav" -l 127.0.0.1:0 --addr-file "$D/addr" >"$D/serve.log" 2>&1
	SERVER_PID=$!
	wait_for_file "$D/addr"
	run -0 sh "$R/wav-to-mp3" work -j 2 "$(head -n 1 "$D/addr")"
	wait_server_exit 30
	assert_equal "$status" 0
	local f
	for f in "tone 1" "tone 2" "tone 3" "-stereo 'quoted'"; do
		is_mp3 "$D/wav/mp3/$f.mp3"
	done
	assert_equal "$(count_files "$D"/wav/mp3/*)" 4
	run file "$D/wav/mp3/-stereo 'quoted'.mp3"
	assert_output --partial "layer III"
	assert_output --partial "Stereo"
	run -0 sh "$R/wav-to-mp3" serve "$D/wav" -l 127.0.0.1:0 --addr-file "$D/addr2"
	assert_output --partial "already have results"
	run -2 sh "$R/wav-to-mp3" encode "$D/wav"
	assert_output --partial "usage: wav-to-mp3 serve DIR"
}

@test "scale-images: serve a directory of pictures, work with ImageMagick; only what is larger shrinks, in its own format" {
	convert -version | grep -q 'ImageMagick' || {
		echo "ImageMagick is not installed (imagemagick: sh share/setup check)" >&2
		return 1
	}
	mkdir -p "$D/img"
	convert -size 2000x1000 xc:red "$D/img/wide one.png"
	convert -size 300x900 xc:blue "$D/img/tall.JPG"
	convert -size 100x50 xc:green "$D/img/small.tif"
	echo "not a picture" >"$D/img/notes.txt"
	jq_bg sh "$R/scale-images" serve "$D/img" -l 127.0.0.1:0 --addr-file "$D/addr" >"$D/serve.log" 2>&1
	SERVER_PID=$!
	wait_for_file "$D/addr"
	run -0 env SIZE=400x400 sh "$R/scale-images" work -j 2 "$(head -n 1 "$D/addr")"
	wait_server_exit 30
	assert_equal "$status" 0
	run -0 identify -format '%f %m %wx%h\n' "$D/img/scaled/wide one.png" "$D/img/scaled/tall.JPG" \
		"$D/img/scaled/small.tif"
	assert_line "wide one.png PNG 400x200"
	assert_line "tall.JPG JPEG 133x400"
	assert_line "small.tif TIFF 100x50"
	assert_file_not_exist "$D/img/scaled/notes.txt"
}

# ---------------------------------------------------------------------------- the index

@test "every recipe is listed in the README and in share/recipes/README, and says how the suite runs it" {
	local f rel
	while IFS= read -r f; do
		rel=${f#"$R"/}
		[[ $rel != README ]] || continue
		grep -qF -- "$rel" "$TOP/README" || { echo "README does not list $rel" >&2; return 1; }
		grep -qF -- "$rel" "$R/README" || { echo "share/recipes/README does not list $rel" >&2; return 1; }
		grep -q 'tests/recipes.bats' "$f" || { echo "$rel does not say how tests/recipes.bats runs it" >&2; return 1; }
		grep -qF -- "${rel##*/}" "$BATS_TEST_FILENAME" || { echo "$rel is not named in tests/recipes.bats" >&2; return 1; }
	done < <(find "$R" -type f | sort)
}

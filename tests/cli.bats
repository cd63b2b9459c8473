#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr and $stderr_lines are set by bats' run --separate-stderr
# Command lines of every tool: --help, --usage, --version, unknown options,
# bad values and missing operands (exit 2 with one line naming the problem).

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
	printf 'x\n' >"$D/a"
}

TOOLS=(jq-serve jq-take jq-put jq-stat)

# usage_fails TOOL ARG...: TOOL ARG... exits 2, prints nothing on stdout, and on
# stderr exactly "TOOL: <what>: <why>" (one line) then "TOOL: Try 'TOOL --help' ...".
# Bounded: a tool that starts serving instead is killed after 30 s.
usage_fails() {
	local tool=$1
	shift
	run --separate-stderr timeout -k 5 30 "$tool" "$@"
	if ((status != 2)) || [[ -n $output ]] || ((${#stderr_lines[@]} != 2)) ||
		[[ ${stderr_lines[0]} != "$tool: "?* ]] ||
		[[ ${stderr_lines[1]} != "$tool: Try '$tool --help'"* ]]; then
		{
			echo "$tool $*: want exit 2, no stdout and a 2-line error; got exit $status"
			echo "stdout: $output"
			echo "stderr: $stderr"
		} >&2
		return 1
	fi
}

@test "--help, -? and --usage of every tool print usage and exit 0" {
	for t in "${TOOLS[@]}"; do
		run --separate-stderr -0 "$t" --help
		assert_output --partial "Usage: $t"
		assert_equal "$stderr" ''
		run -0 "$t" '-?'
		assert_output --partial "Usage: $t"
		run --separate-stderr -0 "$t" --usage
		assert_output --partial "$t"
		assert_equal "$stderr" ''
	done
}

@test "--help lists the documented options" {
	run -0 jq-serve --help
	for o in --listen --files-from --null --skip-missing --output-dir --result --max-result \
		--max-conns --addr-file --verbose --quiet --help --usage --version; do
		assert_output --partial -- "$o"
	done
	run -0 jq-take --help
	for o in --output --id-file --name --null --match --wait --worker; do
		assert_output --partial -- "$o"
	done
	run -0 jq-put --help
	for o in --fail --message --exit-status; do
		assert_output --partial -- "$o"
	done
	run -0 jq-stat --help
	assert_output --partial -- --json
}

@test "--version and -V of every tool print the name and version and exit 0" {
	for t in "${TOOLS[@]}"; do
		run --separate-stderr -0 "$t" --version
		assert_output --regexp "^$t .*0\.1\.0$"
		assert_equal "${#lines[@]}" 1
		assert_equal "$stderr" ''
		run -0 "$t" -V
		assert_output --regexp "^$t .*0\.1\.0$"
	done
}

@test "a help option wins over operands and does not connect or serve" {
	run -0 timeout 30 jq-take --help unix:/nonexistent/sock
	run -0 timeout 30 jq-serve --help "$D/a"
	run -0 timeout 30 jq-serve --version "$D/missing"
}

@test "an unknown option exits 2 with a one-line error naming it" {
	for t in "${TOOLS[@]}"; do
		usage_fails "$t" --no-such-option "$D/a"
		[[ ${stderr_lines[0]} == *--no-such-option* ]]
		usage_fails "$t" -Q "$D/a"
		[[ ${stderr_lines[0]} == *-Q* ]]
	done
}

@test "an option missing its value exits 2" {
	usage_fails jq-serve "$D/a" --listen
	usage_fails jq-serve "$D/a" -r
	usage_fails jq-take -o
	usage_fails jq-take --wait
	usage_fails jq-put --fail -m
	usage_fails jq-stat --no-such-option=1
}

@test "jq-take: bad --wait values exit 2" {
	for v in x -1 +1 1.5s 1sec '' 5w ' 1' 99999999999999999999; do
		usage_fails jq-take --wait "$v" -o "$D/in" unix:/nonexistent/sock
		[[ ${stderr_lines[0]} == *wait* ]]
	done
}

@test "jq-take: bad --match and --worker values, stray operands exit 2" {
	usage_fails jq-take --match '' -o "$D/in" unix:/nonexistent/sock
	printf -v long '%*s' 2000 ''
	usage_fails jq-take --match "${long// /x}" -o "$D/in" unix:/nonexistent/sock
	usage_fails jq-take --worker '' -o "$D/in" unix:/nonexistent/sock
	usage_fails jq-take -o "$D/in" unix:/nonexistent/sock extra
	usage_fails jq-take -o '' unix:/nonexistent/sock
	# none of these created anything
	run ls -A "$D"
	assert_output a
}

@test "jq-put: bad ids, --exit-status values and option combinations exit 2" {
	local t=0badc0de000000010123456789abcdef h
	h=1:$t
	# a bare id is no handle (ID:TOKEN, what jq-take printed); nor is a handle with a bad part
	for id in 0 -1 abc 1x '' 18446744073709551616 1 "0:$t" "-1:$t" "x:$t" "1:${t:1}" "1:${t}0" \
		"1:${t^^}" "1:00000000000000010123456789abcdef" "1:0badc0de000000000123456789abcdef" \
		"1;$t" ":$t" "1:"; do
		usage_fails jq-put unix:/nonexistent/sock "$id" "$D/a"
	done
	for v in x -1 256 1.0 ''; do
		usage_fails jq-put --fail -x "$v" unix:/nonexistent/sock "$h"
	done
	usage_fails jq-put -m 'needs --fail' unix:/nonexistent/sock "$h" "$D/a"
	usage_fails jq-put -x 1 unix:/nonexistent/sock "$h" "$D/a"
	usage_fails jq-put --fail unix:/nonexistent/sock "$h" "$D/a"
	usage_fails jq-put unix:/nonexistent/sock "$h" "$D/a" extra
	usage_fails jq-put
}

@test "jq-serve: bad numeric values exit 2 without listening" {
	for v in x -1 1Q 1.5G 1KB '' 99999999999999999999; do
		usage_fails jq-serve --max-result "$v" --addr-file "$D/addr" -l 127.0.0.1:0 "$D/a"
		[[ ${stderr_lines[0]} == *max-result* ]]
	done
	for v in x -1 0 '' 99999999999999999999; do
		usage_fails jq-serve --max-conns "$v" --addr-file "$D/addr" -l 127.0.0.1:0 "$D/a"
	done
	assert_file_not_exist "$D/addr"
}

@test "jq-serve: bad listen addresses exit 2 without listening" {
	for a in 'h:70000' 'h:x' '[::1' 'unix:' ''; do
		usage_fails jq-serve -l "$a" --addr-file "$D/addr" "$D/a"
	done
	assert_file_not_exist "$D/addr"
}

@test "jq-serve without any FILE serves added jobs until told to stop (--keep)" {
	start_server -v
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	assert_equal "$status" 0
	grep -qF 'serving until shut down (--keep)' "$SERVER_LOG"
}

@test "jq-serve -o makes a missing directory (and its parents); a failed start removes it again" {
	# a start that fails after the inputs are known good leaves no directory behind
	run --separate-stderr timeout -k 5 30 jq-serve -o "$D/new/mp3" -r 'same' -l 127.0.0.1:0 \
		--addr-file "$D/addr" "$D/a" "$D/a2"
	assert_equal "$status" 8
	assert_file_not_exist "$D/new"
	printf 'y\n' >"$D/a2"
	run --separate-stderr timeout -k 5 30 jq-serve -o "$D/new/mp3" -r 'same' -l 127.0.0.1:0 \
		--addr-file "$D/addr" "$D/a" "$D/a2"
	assert_equal "$status" 2
	assert_file_not_exist "$D/new"
	# a file in the way is refused
	run --separate-stderr timeout -k 5 30 jq-serve -o "$D/a" "$D/a"
	assert_equal "$status" 2
	[[ $stderr == *"not a directory"* ]]
	# and a good start makes it, results land in it
	start_server -o "$D/new/mp3" "$D/a"
	[[ -d $D/new/mp3 ]]
	run -0 jq-run "$SERVER" -- cat
	wait_server_exit
	assert_equal "$status" 0
	assert_equal "$(cat "$D/new/mp3/a.result")" "x"
}

@test "jq-stat: stray operands exit 2" {
	usage_fails jq-stat unix:/nonexistent/sock extra
}

@test "every tool's --help says what it does and lists each exit status it can return" {
	local -A codes=(
		[jq-serve]="0 1 2 8 9 10"
		[jq-take]="0 2 3 5 6 7 8 9 10"
		[jq-put]="0 2 4 6 7 8 10"
		[jq-stat]="0 2 6 7 8 10"
		[jq-run]="0 1 2 6 7 8 9 10"
	)
	local t n text
	for t in "${!codes[@]}"; do
		run -0 "$t" --help
		# a description after the options, then the exit statuses
		[[ $output == *$'\n\n'[A-Z]*'Exit status: '* ]] || fail "$t --help: no description or exit status"
		text=${output#*Exit status: }
		text=${text//$'\n'/ }
		for n in ${codes[$t]}; do
			[[ " $text" == *[\ ,:]"$n "* ]] || fail "$t --help: exit status $n is not listed"
		done
	done
}

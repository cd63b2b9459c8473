#!/usr/bin/env bats
# Bash completion for the jq tools (completions/jq-tools), driven without a
# terminal: complete_line splits a command line the way bash does, calls
# _jq_tools and prints COMPREPLY, one candidate per line.

bats_require_minimum_version 1.5.0

setup() {
    bats_load_library bats-support
    bats_load_library bats-assert

    # no user dotfiles, ssh known hosts or /etc/hosts in the candidates
    export HOME=$BATS_TEST_TMPDIR/home
    mkdir -p "$HOME"
    export COMP_KNOWN_HOSTS_WITH_HOSTFILE=
    unset JQ_SERVER
    COMP_WORDBREAKS=$' \t\n"\'><=;|&(:'

    # shellcheck source=/dev/null
    source /usr/share/bash-completion/bash_completion
    # shellcheck source=/dev/null
    source "$BATS_TEST_DIRNAME/../completions/jq-tools"

    # compopt only works while bash is completing; record its arguments
    # shellcheck disable=SC2317
    compopt() { printf '%s\n' "$*" >>"$BATS_TEST_TMPDIR/compopt"; }

    # a directory with known files to complete on
    WORK=$BATS_TEST_TMPDIR/work
    mkdir -p "$WORK/sub" "$WORK/outdir"
    touch "$WORK/alpha.wav" "$WORK/beta.txt" "$WORK/sock.s" "$WORK/-dash.wav"
    cd "$WORK" || return 1
}

# complete_line LINE: complete at the end of LINE, print the candidates.
complete_line() {
    local line=$1 tok
    local -a words=()
    local -
    set -f
    COMP_LINE=$line
    COMP_POINT=${#line}
    local brk='='
    [[ $COMP_WORDBREAKS == *:* ]] && brk+=':'
    for tok in $line; do
        # bash makes runs of ':' and '=' (when in COMP_WORDBREAKS) words of their own
        while [[ $tok =~ ^([^$brk]*)([$brk]+)(.*)$ ]]; do
            [[ -n ${BASH_REMATCH[1]} ]] && words+=("${BASH_REMATCH[1]}")
            words+=("${BASH_REMATCH[2]}")
            tok=${BASH_REMATCH[3]}
        done
        [[ -n $tok ]] && words+=("$tok")
    done
    [[ $line == *' ' ]] && words+=('')
    COMP_WORDS=("${words[@]}")
    COMP_CWORD=$((${#words[@]} - 1))
    COMPREPLY=()
    _jq_tools "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    ((${#COMPREPLY[@]} == 0)) || printf '%s\n' "${COMPREPLY[@]}"
}

@test "the script registers all five tools" {
    run complete -p jq-serve jq-take jq-put jq-stat jq-run
    assert_success
    assert_line "complete -F _jq_tools jq-serve"
    assert_line "complete -F _jq_tools jq-stat"
    assert_line "complete -F _jq_tools jq-run"
}

@test "jq-serve: long option prefix" {
    run complete_line "jq-serve --lis"
    assert_output -- "--listen"
    run complete_line "jq-serve --ma"
    assert_output $'--max-result\n--max-conns\n--max-unauth\n--max-add-size\n--max-spool\n--max-spool-jobs\n--max-tree-size\n--max-tree-entries'
}

@test "jq-serve: every option, and none of the other tools'" {
    run complete_line "jq-serve -"
    local o
    for o in -l --listen -T --files-from -0 --null --skip-missing -o --output-dir \
        -r --result --max-result --max-conns --max-unauth --addr-file -v --verbose -q --quiet \
        --token-file --no-auth --unix-auth --stall-timeout --idle-timeout --keep \
        --max-add-size --max-spool --max-spool-jobs; do
        assert_line -- "$o"
    done
    for o in --output --json --wait --jobs --fail --; do
        refute_line -- "$o"
    done
}

@test "jq-take: options" {
    run complete_line "jq-take --id"
    assert_output -- "--id-file"
    run complete_line "jq-take -"
    local o
    for o in -o --output -i --id-file -n --name -z --null -m --match -w --wait --worker --lease; do
        assert_line -- "$o"
    done
    refute_line -- "--output-dir"
    refute_line -- "--listen"
}

@test "jq-put: options" {
    run complete_line "jq-put --"
    assert_output $'--fail\n--message\n--exit-status\n--touch\n--lease\n--retry\n--add\n--name\n--if-new\n--queue\n--priority\n--wait\n--reconnect\n--cancel\n--drain\n--undrain\n--shutdown\n--after\n--before\n--tempfail\n--token-file\n--no-auth\n--help\n--usage\n--version'
    run complete_line "jq-put -"
    assert_line -- "-f"
    assert_line -- "-m"
    assert_line -- "-x"
    assert_line -- "-a"
    assert_line -- "-n"
}

@test "jq-put --add: SERVER, then FILEs (files at once with JQ_SERVER); --name takes a value; --shutdown: SERVER only" {
    run complete_line "jq-put --add ./so"
    assert_output "./sock.s"
    run complete_line "jq-put --add srv al"
    assert_output "alpha.wav"
    run complete_line "jq-put --add srv alpha.wav be"
    assert_output "beta.txt"
    run complete_line "jq-put -a --if-new srv be"
    assert_output "beta.txt"
    run complete_line "jq-put --add --name "
    assert_output ""
    run complete_line "jq-put -an x srv be"
    assert_output "beta.txt"
    JQ_SERVER=unix:/nonexistent run complete_line "jq-put --add al"
    assert_output "alpha.wav"
    run complete_line "jq-put --shutdown ./so"
    assert_output "./sock.s"
    run complete_line "jq-put --shutdown srv al"
    assert_output ""
}

@test "jq-put --wait, --cancel, --drain, --undrain: SERVER, then nothing (an ID or a WORKER); --add --wait takes FILEs; --reconnect takes a value" {
    run complete_line "jq-put --wait ./so"
    assert_output "./sock.s"
    run complete_line "jq-put --wait srv al"
    assert_output ""
    run complete_line "jq-put --cancel srv al"
    assert_output ""
    run complete_line "jq-put --drain ./so"
    assert_output "./sock.s"
    run complete_line "jq-put --undrain srv al"
    assert_output ""
    run complete_line "jq-put --add --wait srv al"
    assert_output "alpha.wav"
    run complete_line "jq-put --wait --add srv al"
    assert_output "alpha.wav"
    run complete_line "jq-put --wait --reconnect "
    assert_output ""
}

@test "jq-serve: the journal and lease options, and --state-dir takes a directory" {
    run complete_line "jq-serve --re"
    assert_line -- "--result"
    assert_line -- "--retries"
    assert_line -- "--retry-failed"
    assert_line -- "--redo"
    run complete_line "jq-serve --"
    local o
    for o in --lease --state-dir --fresh --redo --no-sync --joblog --linger; do
        assert_line -- "$o"
    done
    mkdir -p "$BATS_TEST_TMPDIR/w/statedir"
    : >"$BATS_TEST_TMPDIR/w/statefile"
    cd "$BATS_TEST_TMPDIR/w"
    run complete_line "jq-serve --state-dir state"
    assert_line -- "statedir"
    refute_line -- "statefile"
}

@test "jq-stat: --json, not jq-run's --jobs" {
    run complete_line "jq-stat --j"
    assert_output -- "--json"
    run complete_line "jq-stat -"
    assert_output $'-j\n--json\n-l\n--list\n--state\n--queue\n--match\n-w\n--watch\n--token-file\n--no-auth\n--help\n-?\n--usage\n--version\n-V'
}

@test "jq-stat: --state offers the states, comma after comma; --queue the default queue" {
    run complete_line "jq-stat --state "
    assert_output $'waiting\nrunning\ndone\nfailed'
    run complete_line "jq-stat --state=f"
    assert_output "failed"
    run complete_line "jq-stat --state waiting,"
    assert_output $'waiting,running\nwaiting,done\nwaiting,failed'
    run complete_line "jq-stat --state waiting,r"
    assert_output "waiting,running"
    run complete_line "jq-stat --queue "
    assert_output "default"
    # their values are not taken for the SERVER operand
    run complete_line "jq-stat --match *.wav --state done --queue default loc"
    assert_output "localhost"
}

@test "jq-run: options" {
    run complete_line "jq-run -"
    local o
    for o in -j --jobs --timeout --keep --keep-tmp --max-jobs --match -v --verbose --worker --tmpdir --reconnect --halt-after --; do
        assert_line -- "$o"
    done
    refute_line -- "--json"
    refute_line -- "--listen"
}

@test "every tool: --help --usage --version -V" {
    local t o
    for t in jq-serve jq-take jq-put jq-stat jq-run; do
        run complete_line "$t -"
        for o in --help "-?" --usage --version -V; do
            assert_line -- "$o"
        done
        run complete_line "$t --vers"
        assert_output -- "--version"
    done
}

@test "jq-take -o and --id-file complete files" {
    run complete_line "jq-take -o al"
    assert_output "alpha.wav"
    run complete_line "jq-take -o "
    assert_line "alpha.wav"
    assert_line "beta.txt"
    assert_line "sub"
    run complete_line "jq-take --id-file=be"
    assert_output "beta.txt"
    run complete_line "jq-take -zi be"
    assert_output "beta.txt"
    # -n takes no value: the next word is the SERVER operand
    run complete_line "jq-take -n loc"
    assert_output "localhost"
    # -oFILE: the value is attached, the next word is the SERVER operand
    run complete_line "jq-take -oout.wav loc"
    assert_output "localhost"
}

@test "jq-serve --output-dir, -o and jq-run --tmpdir complete directories only" {
    run complete_line "jq-serve --output-dir "
    assert_output $'outdir\nsub'
    run complete_line "jq-serve -vo "
    assert_output $'outdir\nsub'
    run complete_line "jq-serve --output-dir=s"
    assert_output "sub"
    run complete_line "jq-run --tmpdir "
    assert_output $'outdir\nsub'
}

@test "jq-serve: -T and --addr-file take files, operands are files" {
    run complete_line "jq-serve -T al"
    assert_output "alpha.wav"
    run complete_line "jq-serve --addr-file be"
    assert_output "beta.txt"
    run complete_line "jq-serve -l :0 al"
    assert_output "alpha.wav"
    run complete_line "jq-serve -- -"
    assert_output -- "-dash.wav"
}

@test "addresses: unix: completes paths, a word with / is a path" {
    run complete_line "jq-take unix:so"
    assert_output "sock.s"
    run complete_line "jq-stat unix:$WORK/so"
    assert_output "$WORK/sock.s"
    run complete_line "jq-serve -l unix:$WORK/s"
    assert_line "$WORK/sock.s"
    assert_line "$WORK/sub"
    refute_line "$WORK/alpha.wav"
    run complete_line "jq-serve --listen=unix:so"
    assert_output "sock.s"
    run complete_line "jq-put ./so"
    assert_output "./sock.s"
}

@test "addresses: unix: when ':' is not in COMP_WORDBREAKS" {
    COMP_WORDBREAKS=$' \t\n"\'><=;|&('
    run complete_line "jq-take unix:so"
    assert_output "unix:sock.s"
    run complete_line "jq-take unix:su"
    assert_output "unix:sub/"
    grep -qx -- "-o nospace" "$BATS_TEST_TMPDIR/compopt"
}

@test "addresses: unix: prefix, localhost and known hosts" {
    run complete_line "jq-take u"
    assert_output "unix:"
    grep -qx -- "-o nospace" "$BATS_TEST_TMPDIR/compopt"
    run complete_line "jq-take loc"
    assert_output "localhost"
    mkdir -p "$HOME/.ssh"
    echo "node7.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH" >"$HOME/.ssh/known_hosts"
    run complete_line "jq-stat no"
    assert_output "node7.example"
    JQ_SERVER=queue.example:7000 run complete_line "jq-run qu"
    assert_output "queue.example:7000"
    run complete_line "jq-serve -l "
    assert_line "unix:"
    assert_line "127.0.0.1"
    assert_line ":7117"
}

@test "addresses: the default port after HOST:, [V6]: and :" {
    run complete_line "jq-take localhost:"
    assert_output "7117"
    run complete_line "jq-put node7.example:7"
    assert_output "7117"
    run complete_line "jq-serve -l [::1]:"
    assert_output "7117"
    run complete_line "jq-serve -l :"
    assert_output "7117"
    run complete_line "jq-take localhost:8"
    assert_output ""
    # an IPv6 literal being typed
    run complete_line "jq-serve -l [::"
    assert_output "1]"
}

@test "jq-take and jq-stat take one SERVER operand only" {
    run complete_line "jq-take srv lo"
    assert_output ""
    run complete_line "jq-stat -j srv lo"
    assert_output ""
}

@test "jq-put: ID operand gets nothing, FILE operand gets files" {
    run complete_line "jq-put srv al"
    assert_output ""
    run complete_line "jq-put srv 5 al"
    assert_output "alpha.wav"
    run complete_line "jq-put -m 'x' srv 5 be"
    assert_output "beta.txt"
    run complete_line "jq-put srv 5 alpha.wav be"
    assert_output ""
    JQ_SERVER=unix:/nonexistent run complete_line "jq-put 5 al"
    assert_output "alpha.wav"
}

@test "jq-run: option values" {
    run complete_line "jq-run -j "
    assert_line "1"
    run complete_line "jq-run -vj "
    assert_line "1"
    run complete_line "jq-run --timeout "
    assert_output ""
    run complete_line "jq-run --match "
    assert_output ""
}

@test "jq-run: after SERVER comes --" {
    run complete_line "jq-run srv "
    assert_output -- "--"
    run complete_line "jq-run -j 2 --keep-tmp srv "
    assert_output -- "--"
}

@test "jq-run: the command after -- is completed as a command" {
    run complete_line "jq-run srv -- ls --almost-al"
    assert_output -- "--almost-all"
    run complete_line "jq-run -- ls --almost-al"
    assert_output -- "--almost-all"
    run complete_line "jq-run srv -- bas"
    assert_line "bash"
}

@test "jq-run: words split at ':' and '=' before -- (COMP_WORDS re-sync)" {
    run complete_line "jq-run unix:$WORK/sock.s -- ls --almost-al"
    assert_output -- "--almost-all"
    run complete_line "jq-run --worker=w:1 localhost:7117 -- ls --almost-al"
    assert_output -- "--almost-all"
    run complete_line "jq-run localhost:7117 -- ls -- al"
    assert_output "alpha.wav"
}

@test "jq-run: its own options are not offered after --" {
    run complete_line "jq-run srv -- --t"
    refute_output --partial -- "--timeout"
    refute_output --partial -- "--tmpdir"
    run complete_line "jq-run srv -- ls --k"
    assert_line -- "--kibibytes"
    refute_line -- "--keep-tmp"
    run complete_line "jq-run srv -- ls --"
    refute_line -- "--max-jobs"
}

@test "every tool: --token-file completes files; jq-serve --unix-auth offers uid and token" {
    touch "$BATS_TEST_TMPDIR/tok"
    cd "$BATS_TEST_TMPDIR"
    local t
    for t in jq-serve jq-take jq-put jq-stat jq-run; do
        run complete_line "$t --token-file to"
        assert_output tok
    done
    run complete_line "jq-serve --unix-auth "
    assert_line uid
    assert_line token
    assert_equal "${#lines[@]}" 2
}

@test "every tool: each long option its --help lists is completed" {
    local t o
    for t in jq-serve jq-take jq-put jq-stat jq-run; do
        run complete_line "$t --"
        assert_success
        local offered=$output
        # the long options in the help text, e.g. "  -l, --listen=ADDR" or "      --fresh"
        for o in $("$BUILDDIR/$t" --help | grep -oE '^ +(-[^ ,]+, )?--[a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+'); do
            [[ $'\n'$offered$'\n' == *$'\n'$o$'\n'* ]] || fail "$t: $o is in --help but not completed"
        done
    done
}

@test "jq-serve --watch completes directories only; --watch-match takes a glob" {
    run complete_line "jq-serve --wat"
    assert_output $'--watch\n--watch-match'
    run complete_line "jq-serve --watch "
    assert_output $'outdir\nsub'
    run complete_line "jq-serve --watch-match "
    assert_output ""
}

@test "durations: a number gets each unit, for every option whose --help value is DURATION, SECONDS or INTERVAL" {
    run complete_line "jq-run --timeout 10"
    assert_output $'10ms\n10s\n10m\n10h\n10d'
    run complete_line "jq-serve --lease=5"
    assert_output $'5ms\n5s\n5m\n5h\n5d'
    run complete_line "jq-take -w 3"
    assert_output $'3ms\n3s\n3m\n3h\n3d'
    run complete_line "jq-take --wait 3m"
    assert_output $'3ms\n3m'
    run complete_line "jq-run --reconnect "
    assert_output ""
    run complete_line "jq-run --reconnect x"
    assert_output ""
    # found by the name of the value in --help, not by a list here
    local t o
    for t in jq-serve jq-take jq-put jq-stat jq-run; do
        for o in $("$BUILDDIR/$t" --help | grep -oE -- '--[a-z-]+=(DURATION|SECONDS)' | cut -d= -f1); do
            run complete_line "$t $o 7"
            assert_line -- "7s"
        done
    done
}

@test "jq-run: placeholders after --, when a word starts with < or { (quoted, escaped or not)" {
    run complete_line "jq-run srv -- lame '<i"
    assert_output $'<in>\n<id>'
    run complete_line "jq-run srv -- lame {"
    assert_output $'{in}\n{out}\n{out.\n{outdir}\n{name}\n{id}'
    run complete_line "jq-run srv -- lame {out."
    assert_output "{out."
    run complete_line "jq-run srv -- lame '<out.mp3"
    assert_output "<out.mp3>"
    run complete_line "jq-run srv -- ffmpeg -i {in} {out.mp"
    assert_output "{out.mp}"
    run complete_line 'jq-run srv -- lame "<na'
    assert_output "<name>"
    run complete_line 'jq-run srv -- lame \<i'
    assert_output $'\\<in\\>\n\\<id\\>'
    run complete_line "jq-run -- {n"
    assert_output "{name}"
    # <out. waits for its extension: no space after it
    rm -f "$BATS_TEST_TMPDIR/compopt"
    run complete_line "jq-run srv -- lame '<out"
    assert_output $'<out>\n<out.\n<outdir>'
    run complete_line "jq-run srv -- lame '<out."
    assert_output "<out."
    grep -qx -- "-o nospace" "$BATS_TEST_TMPDIR/compopt"
    # not before --, and not a word that merely holds a bracket
    run complete_line "jq-run {i"
    assert_output ""
    run complete_line "jq-run srv -- sh -c a{i"
    refute_output --partial "{in}"
}

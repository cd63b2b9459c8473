# fish completion for jq-serve, jq-take, jq-put, jq-stat and jq-run.
#
# One file for all five tools: install it as jq-serve.fish in a
# vendor_completions.d directory, with jq-take.fish, jq-put.fish, jq-stat.fish
# and jq-run.fish as links to it (make install does); fish loads it by the
# name of the command being completed.  The options and their descriptions
# come from the tool's own --help, so a new option is completed as soon as
# the program has it; its value is completed by the name --help gives it:
#   FILE      files                    DIR       directories
#   ADDR      listen addresses         DURATION, SECONDS, INTERVAL   durations
#   TEMPLATE  result name templates    a|b       one of the words
# and a few options by their own name (__jq_tools_value).  Operands: a server
# address (known hosts, $JQ_SERVER, unix:PATH), jq-serve's and jq-put's
# files, and after jq-run's -- a command line of its own, with jq-run's
# placeholders when a word starts with < or {, quoted ('{in}', "<out>") or
# after a backslash: fish would escape the closing brace of an unquoted one.

# __jq_tools_parse CMD: one line per option of CMD --help,
# "short<TAB>long<TAB>meta<TAB>optional<TAB>description".  popt prints
# "  -l, --listen ADDR   text", "      --fresh   text" or
# "  -w, --watch[=INTERVAL]   text"; deeper lines continue the text.
function __jq_tools_parse -a cmd
    set -l short
    set -l long
    set -l meta
    set -l optional
    set -l desc
    set -l have 0
    for line in (command $cmd --help 2>/dev/null)
        if string match -qr '^ {1,8}-' -- $line
            test $have = 1; and printf '%s\t%s\t%s\t%s\t%s\n' "$short" "$long" "$meta" "$optional" "$desc"
            set have 1
            set line (string trim -- $line)
            set -l head (string split -m 1 '  ' -- $line)
            set desc (string trim -- "$head[2]")
            set short ''
            set long ''
            set meta ''
            set optional ''
            for tok in (string split ', ' -- $head[1])
                set -l name (string replace -r '[= \[].*' '' -- $tok)
                set -l rest (string sub -s (math (string length -- $name) + 1) -- $tok)
                if string match -q '[=*' -- $rest
                    set optional 1
                    set meta (string replace -r '^\[=([^]]*)\].*' '$1' -- $rest)
                else if string match -qr '^[= ]' -- $rest
                    set meta (string sub -s 2 -- $rest)
                end
                if string match -q -- '--*' $name
                    set long (string sub -s 3 -- $name)
                else
                    set short (string sub -s 2 -- $name)
                end
            end
        else if test $have = 1; and string match -qr '^ {9,}\S' -- $line
            set desc "$desc "(string trim -- $line)
        else if test $have = 1
            printf '%s\t%s\t%s\t%s\t%s\n' "$short" "$long" "$meta" "$optional" "$desc"
            set have 0
        end
    end
    test $have = 1; and printf '%s\t%s\t%s\t%s\t%s\n' "$short" "$long" "$meta" "$optional" "$desc"
end

# __jq_tools_scan CMD: walk the tokens before the cursor and print three lines:
# the index of "--" among them (0: none), the operands seen before it (their
# number), jq-put's mode (--add, --shutdown or empty), and the first operand
function __jq_tools_scan -a cmd
    set -l vlong
    set -l vshort
    for e in $__jq_tools_table
        set -l f (string split \t -- $e)
        test "$f[1]" = $cmd; or continue
        if test -n "$f[4]"; and test -z "$f[5]"
            test -n "$f[3]"; and set -a vlong -- --$f[3]
            test -n "$f[2]"; and set -a vshort -- $f[2]
        end
    end
    set -l tokens (commandline -opc)
    set -l need 0
    set -l dd 0
    set -l nops 0
    set -l mode ''
    set -l first ''
    set -l i 1
    for w in $tokens[2..-1]
        set i (math $i + 1)
        if test $need = 1
            set need 0
            continue
        end
        if test $dd != 0
            set nops (math $nops + 1)
            continue
        end
        switch $w
            case --
                set dd $i
            case '--*=*'
            case --add --shutdown
                set mode $w
            case '--?*'
                contains -- $w $vlong; and set need 1
            case '-?*'
                # a cluster of short options: -vj 4, -vj4, -o FILE
                set -l chars (string split '' -- (string sub -s 2 -- $w))
                set -l k 0
                for c in $chars
                    set k (math $k + 1)
                    test $cmd = jq-put; and test $c = a; and set mode --add
                    if contains -- $c $vshort
                        test $k = (count $chars); and set need 1
                        break
                    end
                end
            case '*'
                test $nops = 0; and set first $w
                set nops (math $nops + 1)
        end
    end
    printf '%s\n' $dd $nops "$mode" "$first"
end

# __jq_tools_words WORD...: the WORDs that start with the current token
function __jq_tools_words
    set -l cur (commandline -ct)
    for w in $argv
        string match -q -- "$cur*" $w; and printf '%s\n' $w
    end
end

# __jq_tools_addr listen|connect: server addresses: unix:PATH, a path with a
# '/', HOST, HOST:PORT, [V6]:PORT, :PORT; known hosts and $JQ_SERVER to connect
function __jq_tools_addr -a how
    set -l cur (commandline -ct)
    set -l port 7117
    if string match -q -- 'unix:*' $cur
        __fish_complete_path (string sub -s 6 -- $cur) | string replace -r '^' unix:
        return
    end
    if string match -q -- '*/*' $cur
        __fish_complete_path $cur
        return
    end
    if string match -qr -- '^(\[[^]]*\]|[^][:]*):[0-9]*$' $cur
        printf '%s\n' (string replace -r ':[0-9]*$' '' -- $cur):$port
        return
    end
    printf '%s\n' unix: localhost
    if test $how = listen
        printf '%s\n' 127.0.0.1 '[::1]' :$port
    else
        set -q JQ_SERVER; and test -n "$JQ_SERVER"; and printf '%s\n' $JQ_SERVER
        __fish_print_hostnames
    end
end

# __jq_tools_value CMD OPTION META: values for OPTION (its long name, or its
# short one), named META in --help
function __jq_tools_value -a cmd opt meta
    set -l cur (commandline -ct | string replace -r '^--[^=]*=' '')
    switch $cmd:$opt
        case jq-run:jobs jq-run:j
            seq 1 (nproc 2>/dev/null; or echo 1)
            return
        case jq-stat:state
            # a comma-separated list: offer each state not named yet
            set -l done (string replace -r '[^,]*$' '' -- $cur)
            for s in waiting running done failed blocked
                contains -- $s (string split , -- $done); or printf '%s\n' $done$s
            end
            return
        case jq-stat:queue
            echo default
            return
    end
    switch $meta
        case FILE
            __fish_complete_path $cur
        case DIR
            __fish_complete_directories $cur ''
        case ADDR
            __jq_tools_addr listen
        case DURATION SECONDS INTERVAL
            set -l n (string match -r '^[0-9]+' -- $cur)
            and string match -qr '^[0-9]+[a-z]*$' -- $cur
            and printf "$n%s\n" ms s m h d
        case TEMPLATE
            printf '%s\n' '{name}.result' '{stem}.'
        case '*|*'
            string split '|' -- $meta
    end
end

# __jq_tools_placeholders: jq-run's placeholders, in the spelling the token
# started with (< or {, after a quote or a backslash); <out.EXT> is closed
# once EXT is typed
function __jq_tools_placeholders
    set -l cur (commandline -ct | string replace -r '^[\'"]|^\\\\' '')
    set -l o (string sub -l 1 -- $cur)
    set -l c '}'
    test "$o" = '<'; and set c '>'
    if string match -qr -- '^.out\.[^>}]+$' $cur
        printf '%s\n' $cur$c
        return
    end
    printf "%s\n" "$o"in$c "$o"out$c "$o"out. "$o"outdir$c "$o"name$c "$o"id$c
end

# __jq_tools_operand CMD: what the operand under the cursor can be
function __jq_tools_operand -a cmd
    set -l s (__jq_tools_scan $cmd)
    set -l dd $s[1]
    set -l nops $s[2]
    set -l mode $s[3]
    set -l first $s[4]
    if test $cmd = jq-run; and test $dd != 0
        # the command after --: a command line of its own
        set -l cur (commandline -ct)
        if string match -qr '^[\'"\\\\][<{]' -- $cur
            __jq_tools_placeholders
            return
        end
        # an unquoted { would get its closing brace escaped (\}), which
        # fish then reads as a brace expansion left open: quote it, '{in}'
        string match -q -- '{*' $cur; and return
        set -l tokens (commandline -opc)
        set -l sub (string escape -- $tokens[(math $dd + 1)..-1]) $cur
        complete --do-complete=(string join ' ' -- $sub)
        return
    end
    string match -q -- '-*' (commandline -ct); and return
    switch $cmd
        case jq-serve
            __fish_complete_path (commandline -ct)
        case jq-take jq-stat
            test $nops = 0; and __jq_tools_addr connect
        case jq-put
            switch "$mode"
                case --add
                    # [SERVER] [FILE|-]...: with $JQ_SERVER set, files at once
                    if test $nops = 0; and not set -q JQ_SERVER
                        __jq_tools_addr connect
                    else
                        __fish_complete_path (commandline -ct)
                    end
                case --shutdown
                    test $nops = 0; and __jq_tools_addr connect
                case '*'
                    # [SERVER] ID [FILE]: with $JQ_SERVER set, an all-digit
                    # first operand is the ID
                    set -l idpos 1
                    set -q JQ_SERVER; and string match -qr '^[0-9]+$' -- $first; and set idpos 0
                    if test $nops = 0
                        __jq_tools_addr connect
                    else if test $nops = (math $idpos + 1)
                        __fish_complete_path (commandline -ct)
                    end
            end
        case jq-run
            test $nops = 0; and __jq_tools_addr connect
            printf "%s\n" --
    end
end

# __jq_tools_options_allowed CMD: true before jq-run's --
function __jq_tools_options_allowed -a cmd
    test $cmd != jq-run; and return 0
    not contains -- -- (commandline -opc)
end

# __jq_tools_define CMD: the completions of CMD, from its --help
function __jq_tools_define -a cmd
    complete -c $cmd -e
    # no file names unless an operand or a value is one
    complete -c $cmd -f
    set -l n "__jq_tools_options_allowed $cmd"
    for e in (__jq_tools_parse $cmd)
        set -a __jq_tools_table $cmd\t$e
        set -l f (string split \t -- $e)
        set -l spec -c $cmd -n $n
        test -n "$f[1]"; and set -a spec -s $f[1]
        test -n "$f[2]"; and set -a spec -l $f[2]
        set -a spec -d $f[5]
        if test -n "$f[3]"; and test -z "$f[4]"
            set -l name $f[2]
            test -n "$name"; or set name $f[1]
            if test "$f[3]" = FILE
                set -a spec -r -F
            else
                set -a spec -x -a "(__jq_tools_value $cmd $name "(string escape -- $f[3])")"
            end
        end
        complete $spec
    end
    complete -c $cmd -n "not string match -q -- '-*' (commandline -ct); or not __jq_tools_options_allowed $cmd" \
        -a "(__jq_tools_operand $cmd)"
end

set -q __jq_tools_table; or set -g __jq_tools_table
begin
    set -l name (string replace -r '\.fish$' '' -- (basename (status current-filename)))
    if contains -- $name jq-serve jq-take jq-put jq-stat jq-run
        __jq_tools_define $name
    else
        # loaded by another name (from the source tree): all five
        for t in jq-serve jq-take jq-put jq-stat jq-run
            __jq_tools_define $t
        end
    end
end

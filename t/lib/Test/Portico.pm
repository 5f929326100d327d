package Test::Portico;

# End-to-end harness: a temp prefix with a generated config, the real binary
# started and stopped around each test file, and raw-socket HTTP helpers.
# Shaped like Test::Nginx, but small. Core Perl modules only.
#
# Every wait is bounded, and the only processes ever signalled are the one
# this object forked (the master) and, if the master has to be KILLed,
# workers it was seen to own (matched by pid *and* start time).

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG :sys_wait_h);
use Scalar::Util qw(weaken);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(parse_response free_port need_bin repo_dir pid_alive wait_for);

my $REPO = abs_path(dirname(__FILE__) . '/../../..');
my %LIVE;     # refaddr => weak ref: instances with a running server
my $OWNER = $$;

sub repo_dir { $REPO }

sub _default_bin {
    return $ENV{PORTICO_BIN} if defined $ENV{PORTICO_BIN} && $ENV{PORTICO_BIN} ne '';
    my $build = $ENV{PORTICO_BUILD} || "$REPO/build";
    return "$build/portico";
}

# For test files that need the server: a binary named by PORTICO_BIN must
# exist (under `make test` a missing one is a failure); without PORTICO_BIN
# a missing build/portico skips the file.
sub need_bin {
    my $bin = _default_bin();
    return $bin if -x $bin;
    require Test::More;
    if (defined $ENV{PORTICO_BIN}) {
        Test::More::plan(tests => 1);
        Test::More::fail("PORTICO_BIN=$bin is not executable");
        exit 1;
    }
    Test::More::plan(skip_all => "no server binary ($bin); run `make` or set PORTICO_BIN");
}

sub new {
    my ($class, %opt) = @_;
    my $keep = $opt{keep} // $ENV{PORTICO_KEEP};
    my $tmp = File::Temp->newdir('portico-XXXXXX', TMPDIR => 1, CLEANUP => !$keep);
    my $dir = "$tmp";
    # a server started as root switches its workers to an unprivileged user,
    # which must still be able to read the document root
    chmod 0755, $dir;
    my $self = bless {
        tmp              => $tmp,
        dir              => $dir,
        bin              => $opt{bin} // _default_bin(),
        worker_processes => $opt{worker_processes} // 1,
        log_level        => $opt{log_level} // $ENV{PORTICO_LOG_LEVEL} // 'info',
        main             => $opt{main} // '',
        events           => $opt{events} // '',
        ports            => [],
        pid              => undef,
    }, $class;
    for my $sub (qw(logs html conf)) {
        make_path("$dir/$sub", { mode => 0755 });
    }
    if ($keep) {
        require Test::More;
        Test::More::diag("Test::Portico: keeping $dir");
    }
    # a test killed by a signal still runs END/DESTROY, so the server goes too
    for my $sig (qw(INT TERM HUP)) {
        $SIG{$sig} = sub { exit 128 } if !defined $SIG{$sig} || $SIG{$sig} eq 'DEFAULT';
    }
    return $self;
}

sub dir       { $_[0]{dir} }
sub bin       { $_[0]{bin} }
sub conf_file { "$_[0]{dir}/conf/portico.conf" }

# ---------------------------------------------------------------- ports

# A free loopback port: bind port 0, read the number, close. Another process
# could take it before the server binds; on a test machine that is rare.
sub free_port {
    my %avoid = map { $_ => 1 } @_;
    for (1 .. 20) {
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1, ReuseAddr => 0,
        ) or die "Test::Portico: cannot bind a free port: $!";
        my $port = $s->sockport;
        close $s;
        return $port unless $avoid{$port};
    }
    die "Test::Portico: no free port after 20 tries";
}

# $s->port (== port(1)), $s->port(2), $s->port2 .. $s->port9: allocated once
sub port {
    my ($self, $n) = @_;
    $n //= 1;
    $self->{ports}[$n] //= free_port(grep { defined } @{ $self->{ports} });
    return $self->{ports}[$n];
}
for my $n (2 .. 9) {
    no strict 'refs';
    *{"port$n"} = sub { $_[0]->port($n) };
}

# ---------------------------------------------------------------- files and config

sub subst {
    my ($self, $text) = @_;
    $text =~ s/%%PORT(\d?)%%/$self->port($1 eq '' ? 1 : $1)/ge;
    $text =~ s/%%ROOT%%/$self->{dir}/g;
    $text =~ s/%%CONF%%/$REPO\/conf/g;
    my $build = $ENV{PORTICO_BUILD} || "$REPO/build";
    $text =~ s/%%BUILD%%/$build/g;
    return $text;
}

sub write_file {
    my ($self, $rel, $content) = @_;
    my $path = $rel =~ m{^/} ? $rel : "$self->{dir}/$rel";
    make_path(dirname($path), { mode => 0755 });
    open my $fh, '>', $path or die "Test::Portico: write $path: $!";
    binmode $fh;
    print {$fh} $content;
    close $fh or die "Test::Portico: close $path: $!";
    return $path;
}

sub read_file {
    my ($self, $rel) = @_;
    my $path = $rel =~ m{^/} ? $rel : "$self->{dir}/$rel";
    open my $fh, '<', $path or return undef;
    binmode $fh;
    local $/;
    my $c = <$fh>;
    return $c // '';
}

# The standard main section around http-level text. Line numbers of the
# caller's text start at $s->conf_http_line.
sub conf {
    my ($self, $http, %opt) = @_;
    my $wp     = $opt{worker_processes} // $self->{worker_processes};
    my $level  = $opt{log_level} // $self->{log_level};
    my $main   = $opt{main} // $self->{main};
    my $events = $opt{events} // $self->{events};
    my $head = <<"CONF";
# generated by Test::Portico
daemon off;
master_process on;
worker_processes $wp;
error_log logs/error.log $level;
pid logs/portico.pid;
$main
events {
    worker_connections 1024;
$events
}

http {
    access_log logs/access.log;
CONF
    $self->{conf_http_line} = ($head =~ tr/\n//) + 1;
    return $self->raw_conf($head . ($http // '') . "\n}\n");
}

sub conf_http_line { $_[0]{conf_http_line} }

sub raw_conf {
    my ($self, $text) = @_;
    return $self->write_file('conf/portico.conf', $self->subst($text));
}

# ---------------------------------------------------------------- running

# Runs a command with a time limit; returns (exit code, stdout+stderr).
# Exit code: the status, 128+signal if killed, -1 on timeout.
sub run_bounded {
    my ($timeout, @cmd) = @_;
    my $out = File::Temp->new(TMPDIR => 1);
    my $pid = fork // die "Test::Portico: fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $out;
        open STDERR, '>&', $out;
        exec { $cmd[0] } @cmd or do { print STDERR "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    my ($rc, $deadline) = (undef, time + $timeout);
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) { $rc = _status($?); last }
        sleep 0.02;
    }
    if (!defined $rc) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $rc = -1;
    }
    seek $out, 0, 0;
    local $/;
    my $text = <$out> // '';
    return ($rc, $text);
}

sub _status {
    my $st = shift;
    return WIFEXITED($st) ? WEXITSTATUS($st) : 128 + WTERMSIG($st);
}

# The binary with this prefix and config, plus @args: (exit code, output).
sub command {
    my ($self, @args) = @_;
    my $timeout = 10;
    return run_bounded($timeout, $self->{bin}, '-p', $self->{dir}, '-c', $self->conf_file, @args);
}

# test_config()         tests the config already written
# test_config($http)    conf($http) first;  test_config(raw => $text): raw_conf($text) first
sub test_config {
    my $self = shift;
    if (@_ == 1) { $self->conf($_[0]) }
    elsif (@_ == 2 && $_[0] eq 'raw') { $self->raw_conf($_[1]) }
    return $self->command('-t');
}

sub start {
    my ($self, %opt) = @_;
    die "Test::Portico: already running (pid $self->{pid})" if $self->{pid};
    die "Test::Portico: $self->{bin} is not executable" unless -x $self->{bin};
    die "Test::Portico: no config written (call conf or raw_conf)" unless -f $self->conf_file;
    my $timeout = $opt{timeout} // 10;
    my $port = $opt{port} // $self->{ports}[1];
    my @cmd = ($self->{bin}, '-p', $self->{dir}, '-c', $self->conf_file, @{ $opt{args} || [] });
    my $log = "$self->{dir}/logs/stderr.log";
    my $pid = fork // die "Test::Portico: fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or do { print STDERR "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    $self->{pid} = $pid;
    $LIVE{"$self"} = $self;
    weaken($LIVE{"$self"});
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $ready = defined $port
            ? _can_connect($port)
            : -s "$self->{dir}/logs/portico.pid";
        # checked after the probe: a port answered by a stale process while
        # ours already died is not "ready"
        if (waitpid($pid, WNOHANG) == $pid) {
            my $rc = _status($?);
            delete $self->{pid};
            delete $LIVE{"$self"};
            die "Test::Portico: server exited with status $rc during start\n" . $self->_tails;
        }
        return $self if $ready;
        sleep 0.05;
    }
    $self->stop;
    die "Test::Portico: server not ready after ${timeout}s"
        . (defined $port ? " (port $port)" : '') . "\n" . $self->_tails;
}

sub _can_connect {
    my $port = shift;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 1);
    return 0 unless $c;
    close $c;
    return 1;
}

sub _tail {
    my ($self, $rel, $n) = @_;
    my $c = $self->read_file($rel);
    return '' unless defined $c && length $c;
    my @l = split /\n/, $c;
    @l = @l[-$n .. -1] if @l > $n;
    return "--- $rel (last " . scalar(@l) . " lines)\n" . join("\n", @l) . "\n";
}

sub _tails {
    my $self = shift;
    return $self->_tail('logs/stderr.log', 20) . $self->_tail('logs/error.log', 30);
}

sub running { defined $_[0]{pid} }

sub master_pid { $_[0]{pid} }

# pid => [ppid, state, starttime] for every process, from /proc/*/stat
sub _proc_table {
    my %t;
    opendir my $d, '/proc' or return \%t;
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $line = <$fh> // next;
        # comm may hold spaces and parens: the fields start after the last ')'
        my ($rest) = $line =~ /\)\s(.*)$/s or next;
        my @f = split ' ', $rest;       # f[0]=state f[1]=ppid ... f[19]=starttime
        $t{$pid} = [ $f[1], $f[0], $f[19] ];
    }
    return \%t;
}

sub _children {
    my ($pid) = @_;
    my $t = _proc_table();
    return map { [ $_, $t->{$_}[2] ] }
        sort { $a <=> $b } grep { $t->{$_}[0] == $pid && $t->{$_}[1] ne 'Z' } keys %$t;
}

# true if $pid exists and is not a zombie (kill 0 is true for zombies)
sub pid_alive {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $line = <$fh> // return 0;
    my ($state) = $line =~ /\)\s(\S)/;
    return defined $state && $state ne 'Z' ? 1 : 0;
}

# live (non-zombie) children of the master, sorted. Every worker seen is
# remembered (pid + start time) so stop can clean up after a master that died.
sub worker_pids {
    my $self = shift;
    return () unless $self->{pid};
    my @w = _children($self->{pid});
    $self->{seen}{ $_->[0] } = $_->[1] for @w;
    return map { $_->[0] } @w;
}

# Polls $cond->() every 50 ms until true or $timeout seconds; returns its value.
sub wait_for {
    my ($timeout, $cond) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        return $v if time >= $deadline;
        sleep 0.05;
    }
}

sub wait_workers {
    my ($self, $n, $timeout) = @_;
    $n //= $self->{worker_processes};
    return wait_for($timeout // 10, sub { my @w = $self->worker_pids; @w == $n ? \@w : undef });
}

sub signal {
    my ($self, $sig) = @_;
    die "Test::Portico: not running" unless $self->{pid};
    return kill $sig, $self->{pid};
}

# HUP; unless wait => 0, waits (bounded) until a worker not seen before
# appears. True if one did (a refused config keeps the old workers: false).
sub reload {
    my ($self, %opt) = @_;
    my %old = map { $_ => 1 } $self->worker_pids;
    $self->signal('HUP');
    return 1 if defined $opt{wait} && !$opt{wait};
    return wait_for($opt{timeout} // 10, sub { grep { !$old{$_} } $self->worker_pids }) ? 1 : 0;
}

# TERM (or sig => 'QUIT'), wait up to timeout (5 s), then KILL.
# Returns the master's exit code (128+signal if killed), undef if not running.
sub stop {
    my ($self, %opt) = @_;
    my $pid = $self->{pid} or return undef;
    return undef if $$ != $OWNER;   # a forked child never stops the parent's server
    local ($?, $!, $@);
    $self->worker_pids;
    my @workers = map { [ $_, $self->{seen}{$_} ] } sort { $a <=> $b } keys %{ $self->{seen} || {} };
    delete $self->{seen};
    kill $opt{sig} // 'TERM', $pid;
    my $rc;
    my $deadline = time + ($opt{timeout} // 5);
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) { $rc = $r == $pid ? _status($?) : undef; last }
        sleep 0.02;
    }
    if (!defined $rc && kill(0, $pid)) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $rc = _status($?);
        $self->{killed} = 1;
    }
    # workers left behind by a master that did not stop them in time: only
    # those seen as its children, and only if the pid still is that process
    if (@workers) {
        my $gone = wait_for(2, sub {
            my $t = _proc_table();
            !grep { $t->{ $_->[0] } && $t->{ $_->[0] }[2] eq $_->[1] && $t->{ $_->[0] }[1] ne 'Z' } @workers;
        });
        if (!$gone) {
            my $t = _proc_table();
            my @left = grep { $t->{ $_->[0] } && $t->{ $_->[0] }[2] eq $_->[1] } @workers;
            kill 'KILL', map { $_->[0] } @left;
            wait_for(1, sub { !grep { pid_alive($_->[0]) } @left });
            $self->{killed} = 1;
        }
    }
    delete $self->{pid};
    delete $LIVE{"$self"};
    $self->{exit_code} = $rc;
    return $rc;
}

sub exit_code { $_[0]{exit_code} }

sub DESTROY {
    my $self = shift;
    local ($?, $!, $@);
    $self->stop if $self->{pid};
}

END {
    local $?;
    for my $s (grep { defined } values %LIVE) { $s->stop }
}

sub error_log  { $_[0]->read_file('logs/error.log') // '' }

# The error-log lines about one client ("*N" connection lines at error, warn
# or info), checked the way issue 8 asks and asserted (Test::More): at least
# min_lines (1) of them; each names the client address once; a request line
# it names is whole ("GET /x HTTP/1.1") and named once; at most 100 a second
# per process (the server's rate limit; a summary line counts the rest).
# Returns {lines, no_client, repeated, partial_request, max_per_sec, dropped_summaries}.
sub client_log_ok {
    my ($self, %opt) = @_;
    my %r = (lines => 0, no_client => 0, repeated => 0, partial_request => 0, max_per_sec => 0,
        dropped_summaries => 0);
    my %per;
    for (split /\n/, $self->error_log) {
        $r{dropped_summaries}++ if /client lines were not logged/;
        my ($sec, $pid) = m{^\S+ (\S+) \[(?:error|warn|info)\] (\d+)#0: \*\d+ } or next;
        $r{lines}++;
        $r{no_client}++ unless /, client: \S/;
        $r{repeated}++ if (() = /, client: /g) > 1 || (() = /, request: "/g) > 1;
        $r{partial_request}++ if /, request: "/ && !m{, request: "[A-Z]+ \S+ HTTP/\d\.\d"};
        my $n = ++$per{"$sec $pid"};
        $r{max_per_sec} = $n if $n > $r{max_per_sec};
    }
    my $what = $opt{name} // 'client error lines';
    Test::More::diag(sprintf '%s: %d lines, at most %d in one second, %d "not logged" summaries', $what,
        @r{qw(lines max_per_sec dropped_summaries)});
    Test::More::cmp_ok($r{lines}, '>=', $opt{min_lines} // 1, "$what: logged");
    Test::More::is($r{no_client}, 0, "$what: each names the client address");
    Test::More::is($r{repeated}, 0, "$what: client and request named once each");
    Test::More::is($r{partial_request}, 0, "$what: the request line is whole");
    Test::More::cmp_ok($r{max_per_sec}, '<=', 100, "$what: at most 100 a second (rate limit)");
    return \%r;
}

sub access_log { $_[0]->read_file('logs/access.log') // '' }
sub stderr_log { $_[0]->read_file('logs/stderr.log') // '' }

# ---------------------------------------------------------------- HTTP

# Sends $raw (a string, or an array ref of pieces sent `delay` seconds apart)
# to 127.0.0.1:port and reads until the peer closes or `timeout` (5 s) ends.
# responses => N stops as soon as N complete responses are in (keep-alive);
# head => 1 tells the counting that the responses have no body.
sub http {
    my ($self, $raw, %opt) = @_;
    my $timeout = $opt{timeout} // 5;
    my $port = $opt{port} // $self->port;
    local $SIG{PIPE} = 'IGNORE';    # a server that closes early must not kill the test
    my $deadline = time + $timeout;
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => $timeout,
    ) or die "Test::Portico: connect 127.0.0.1:$port: $!";
    binmode $sock;
    my @pieces = ref $raw eq 'ARRAY' ? @$raw : ($raw);
    my $sel = IO::Select->new($sock);
    my $in = '';
    my $closed = 0;
    my $read_some = sub {    # drain what is readable within $wait seconds
        my $wait = shift;
        while (!$closed && $sel->can_read($wait)) {
            my $n = sysread($sock, my $buf, 65536);
            if (!$n) { $closed = 1; last }
            $in .= $buf;
            $wait = 0;
        }
    };
    for my $i (0 .. $#pieces) {
        my $data = $pieces[$i];
        while (length $data) {
            last if time >= $deadline || $closed;
            next unless IO::Select->new($sock)->can_write(0.1);
            my $n = syswrite($sock, $data);
            last unless defined $n;     # EPIPE/ECONNRESET: the server closed; keep what it sent
            substr($data, 0, $n, '');
        }
        $read_some->(0) if $i < $#pieces;
        sleep($opt{delay} // 0.1) if $i < $#pieces;
    }
    while (!$closed && time < $deadline) {
        $read_some->(_min(0.1, $deadline - time));
        if ($opt{responses}) {
            my @r = parse_response($in, head => $opt{head}, incomplete_ok => 1);
            last if @r >= $opt{responses};
        }
    }
    close $sock;
    return $in;
}

sub _min { $_[0] < $_[1] ? $_[0] : $_[1] }

sub _request_text {
    my ($method, $path, %h) = @_;
    my $proto = delete $h{-proto} // 'HTTP/1.0';
    my $body  = delete $h{-body};
    $h{Host} //= 'localhost' unless exists $h{Host};
    $h{'Content-Length'} //= length $body if defined $body;
    my $req = "$method $path $proto\r\n";
    for my $k (sort keys %h) {
        next unless defined $h{$k};    # Host => undef sends no Host
        $req .= "$k: $_\r\n" for ref $h{$k} eq 'ARRAY' ? @{ $h{$k} } : ($h{$k});
    }
    return $req . "\r\n" . ($body // '');
}

# Raw response text of "GET $path HTTP/1.0" with Host: localhost and %headers
# (-proto => 'HTTP/1.1', -body => '...', -timeout => 5 are options).
sub http_get {
    my ($self, $path, %h) = @_;
    my $t = delete $h{-timeout};
    return $self->http(_request_text('GET', $path, %h), defined $t ? (timeout => $t) : ());
}

sub http_head {
    my ($self, $path, %h) = @_;
    my $t = delete $h{-timeout};
    return $self->http(_request_text('HEAD', $path, %h), defined $t ? (timeout => $t) : ());
}

# http_request('POST', '/x', 'Content-Type' => 'a/b', -body => 'data')
sub http_request {
    my ($self, $method, $path, %h) = @_;
    my $t = delete $h{-timeout};
    return $self->http(_request_text($method, $path, %h), defined $t ? (timeout => $t) : ());
}

# The first parsed response of http_get: { status, headers, body, ... }
sub get {
    my $self = shift;
    my @r = parse_response($self->http_get(@_));
    return $r[0];
}

# Parses a byte stream of HTTP/1.x responses. Returns a list of hashrefs:
#   { protocol, status, reason, headers => {lc name => value (repeats joined
#     with ", ")}, header_list => [[Name, value], ...], body, trailers, raw }
# Framing: 1xx/204/304 and head => 1 have no body; chunked; Content-Length;
# otherwise the body runs to the end of the data (the connection closed).
# Options: head => 1; rest => \$scalar (bytes left that do not form a whole
# response); incomplete_ok => 1 (a close-delimited body counts as incomplete,
# which is what http() needs while the connection is still open).
sub parse_response {
    my ($raw, %opt) = @_;
    my @out;
    my $pos = 0;
    my $len = length($raw // '');
    $raw //= '';
    while ($pos < $len) {
        my $end = index($raw, "\r\n\r\n", $pos);
        my $lf_end = index($raw, "\n\n", $pos);
        my $sep = 4;
        if ($lf_end >= 0 && ($end < 0 || $lf_end < $end)) { $end = $lf_end; $sep = 2 }
        last if $end < 0;
        my $head = substr($raw, $pos, $end - $pos);
        my @lines = split /\r?\n/, $head;
        my $status_line = shift @lines // '';
        my ($proto, $status, $reason) = $status_line =~ m{^(HTTP/\d\.\d) (\d{3})(?: (.*))?$}
            or last;
        my (%h, @list);
        for my $l (@lines) {
            my ($n, $v) = $l =~ /^([^:]+):[ \t]*(.*?)[ \t]*$/ or next;
            push @list, [ $n, $v ];
            my $k = lc $n;
            $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
        }
        my $r = {
            protocol => $proto, status => $status + 0, reason => $reason // '',
            headers => \%h, header_list => \@list, body => '',
        };
        my $p = $end + $sep;
        my $no_body = $status < 200 || $status == 204 || $status == 304 || $opt{head};
        if ($no_body) {
            # nothing
        } elsif (($h{'transfer-encoding'} // '') =~ /chunked\s*$/i) {
            my ($body, $ok) = ('', 0);
            while (1) {
                my $eol = index($raw, "\r\n", $p);
                last if $eol < 0;
                my ($hex) = substr($raw, $p, $eol - $p) =~ /^([0-9a-fA-F]+)/ or last;
                my $size = hex $hex;
                $p = $eol + 2;
                if ($size == 0) {
                    my %t;
                    while (1) {    # trailer section up to the empty line
                        my $e = index($raw, "\r\n", $p);
                        last if $e < 0;
                        my $line = substr($raw, $p, $e - $p);
                        $p = $e + 2;
                        if ($line eq '') { $ok = 1; last }
                        $t{ lc $1 } = $2 if $line =~ /^([^:]+):[ \t]*(.*?)[ \t]*$/;
                    }
                    $r->{trailers} = \%t;
                    last;
                }
                last if $p + $size + 2 > $len;
                $body .= substr($raw, $p, $size);
                $p += $size + 2;
            }
            last unless $ok;
            $r->{body} = $body;
        } elsif (defined $h{'content-length'} && $h{'content-length'} =~ /^\d+$/) {
            my $cl = $h{'content-length'};
            last if $p + $cl > $len;
            $r->{body} = substr($raw, $p, $cl);
            $p += $cl;
        } else {
            last if $opt{incomplete_ok};
            $r->{body} = substr($raw, $p);
            $p = $len;
        }
        $r->{raw} = substr($raw, $pos, $p - $pos);
        push @out, $r;
        $pos = $p;
    }
    ${ $opt{rest} } = substr($raw, $pos) if $opt{rest};
    return @out;
}

# curl against http://127.0.0.1:PORT$path with -s (and a 10 s limit).
# $s->curl('/x', '-i', '-H', 'Host: a') ; list context: (output, exit code)
sub curl {
    my ($self, $path, @args) = @_;
    $path //= '/';
    my ($rc, $out) = run_bounded(15, 'curl', '-s', '--max-time', '10', @args,
        "http://127.0.0.1:" . $self->port . $path);
    return wantarray ? ($out, $rc) : $out;
}

1;

__END__

=head1 NAME

Test::Portico - start the real server on a generated config and talk HTTP to it

=head1 SYNOPSIS

    use Test::More;
    use Test::Portico qw(parse_response need_bin);
    need_bin();
    my $s = Test::Portico->new;
    $s->write_file('html/a.txt', "hello\n");
    $s->conf(<<'CONF');
        server {
            listen 127.0.0.1:%%PORT%%;
            root %%ROOT%%/html;
        }
    CONF
    $s->start;
    my ($r) = parse_response($s->http_get('/a.txt'));
    is $r->{status}, 200;
    $s->stop;

=cut

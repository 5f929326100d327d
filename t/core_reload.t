#!/usr/bin/perl
# Issue 2, acceptance 4: under keep-alive load, `portico -s reload` five
# times loses no request; a reload with a broken config keeps the old one
# serving and says why; a reload makes a changed `return` text visible.
#
# Two clients run during the reloads: wrk (-t1 -c16 -d10s, if installed),
# which counts socket errors and non-2xx answers, and a Perl keep-alive
# client that checks every response (status, body is one of the versions
# served, a close only after "Connection: close"). Without wrk the Perl
# client alone carries the load part.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin wait_for);

need_bin();

my $s = Test::Portico->new(worker_processes => 2);
$s->write_file('html/file.txt', "static file\n" x 100);

# version $v of the config: the `return` text names it
sub conf_version {
    my ($v) = @_;
    $s->conf(<<"CONF");
    default_type text/plain;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log off;
        root %%ROOT%%/html;
        location = / { return 200 "version $v"; }
        location = /file.txt { }
    }
CONF
}

# `-s reload` through the binary and the pid file; true when a worker not
# seen before has appeared (bounded)
sub reload_by_command {
    my %old = map { $_ => 1 } $s->worker_pids;
    my ($rc, $out) = $s->command('-s', 'reload');
    is $rc, 0, '-s reload exits 0' or diag $out;
    return wait_for(10, sub { grep { !$old{$_} } $s->worker_pids }) ? 1 : 0;
}

# ---------------------------------------------------------------- a checking client

# Runs in a child: keep-alive GET / until $secs are over; writes a summary
# "ok=N fail=M conns=K versions=a,b" and the first failures to $file.
sub keepalive_client {
    my ($port, $secs, $file) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my ($ok, $fail, $conns, %versions, @why) = (0, 0, 0);
    my $deadline = time + $secs;
    my $sock;
    while (time < $deadline) {
        if (!$sock) {
            $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 3);
            if (!$sock) { $fail++; push @why, "connect: $!"; sleep 0.05; next }
            binmode $sock;
            $conns++;
        }
        my $path = ($ok % 5 == 4) ? '/file.txt' : '/';
        if (!defined syswrite($sock, "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n")) {
            $fail++; push @why, "write: $!"; undef $sock; next;
        }
        my ($in, $r, $eof) = ('', undef, 0);
        my $sel = IO::Select->new($sock);
        my $until = time + 5;
        while (!$r && time < $until) {
            last unless $sel->can_read(0.5) || time < $until;
            my $n = sysread($sock, my $buf, 65536);
            if (!$n) { $eof = 1; last }
            $in .= $buf;
            ($r) = parse_response($in, incomplete_ok => 1);
        }
        if (!$r) {
            $fail++;
            push @why, ($eof ? 'connection closed' : 'timeout') . " before a response to $path ("
                . length($in) . " bytes)";
            undef $sock;
            next;
        }
        my $want = $path eq '/' ? qr/^version \d+$/ : qr/^(static file\n){100}$/;
        if ($r->{status} != 200 || $r->{body} !~ $want) {
            $fail++;
            push @why, "GET $path: status $r->{status}, body '" . substr($r->{body}, 0, 40) . "'";
        } else {
            $ok++;
            $versions{ $1 }++ if $path eq "/" && $r->{body} =~ /^version (\d+)/;
        }
        undef $sock if lc($r->{headers}{connection} // '') eq 'close';
    }
    open my $fh, '>', $file or POSIX::_exit(2);
    printf {$fh} "ok=%d fail=%d conns=%d versions=%s\n", $ok, $fail, $conns,
        join(',', sort keys %versions);
    print {$fh} "why: $_\n" for @why[0 .. ($#why < 9 ? $#why : 9)];
    close $fh;
}

sub spawn {
    my ($code) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) { $code->(); POSIX::_exit(0) }
    return $pid;
}

# waits (bounded) for a child of this test; true if it ended
sub reap_child {
    my ($pid, $timeout) = @_;
    return 1 if wait_for($timeout, sub { waitpid($pid, POSIX::WNOHANG()) == $pid });
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return 0;
}

# ---------------------------------------------------------------- the test

conf_version(0);
$s->start;
ok $s->wait_workers(2), 'two workers';
is $s->get('/')->{body}, 'version 0', 'version 0 served';

my $wrk = -x '/usr/bin/wrk' ? '/usr/bin/wrk' : (grep { -x "$_/wrk" } split /:/, $ENV{PATH})[0];
$wrk = "$wrk/wrk" if $wrk && $wrk !~ m{/wrk$};
my $dir = $s->dir;
my $port = $s->port;
my $load_secs = 10;

my $wrk_pid;
if ($wrk) {
    $wrk_pid = spawn(sub {
        my ($rc, $out) = Test::Portico::run_bounded($load_secs + 20, $wrk, '-t1', '-c16', "-d${load_secs}s",
            "http://127.0.0.1:$port/");
        open my $fh, '>', "$dir/wrk.out" or POSIX::_exit(2);
        print {$fh} "rc=$rc\n$out";
        close $fh;
    });
} else {
    diag 'wrk not installed: the Perl keep-alive client alone carries the load';
}
my $client_pid = spawn(sub { keepalive_client($port, $load_secs, "$dir/client.out") });

my $t0 = time;
sleep 1;
my $reloads = 0;
for my $v (1 .. 5) {
    conf_version($v);
    ok reload_by_command(), "reload $v: new workers started";
    ok wait_for(5, sub { ($s->get('/')->{body} // '') eq "version $v" }), "reload $v: 'version $v' served";
    $reloads++;
    my $next = $t0 + 1 + 1.5 * $v;
    sleep($next - time) if $next > time;
}

# A broken config, still under load: refused, logged with file:line, and
# the workers of version 5 keep serving.
{
    my @before = $s->worker_pids;
    my $log_before = length $s->error_log;
    my $file = $s->conf_file;
    $s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        no_such_directive on;
        location = / { return 200 "broken"; }
    }
CONF
    my $line = $s->conf_http_line + 2;
    my ($rc, $out) = $s->command('-s', 'reload');
    is $rc, 0, '-s reload of a broken config: the signal is sent';
    my $log = wait_for(5, sub { my $l = substr($s->error_log, $log_before); $l =~ /reload refused/ ? $l : undef });
    ok $log, 'the master logs that the reload was refused';
    like $log // '', qr/\[emerg\] \d+#0: unknown directive "no_such_directive" in \Q$file\E:$line/,
        'and why, with file:line';
    is $s->get('/')->{body}, 'version 5', 'the old configuration keeps serving';
    sleep 0.5;
    is_deeply [ $s->worker_pids ], \@before, 'no worker was replaced';
}

ok reap_child($client_pid, $load_secs + 15), 'Perl client finished';
my $client = $s->read_file('client.out') // '';
my ($ok_n, $fail_n, $conns, $versions) = $client =~ /^ok=(\d+) fail=(\d+) conns=(\d+) versions=(\S*)/;
diag "Perl client: " . ($client =~ s/\n.*//sr);
is $fail_n, 0, 'Perl keep-alive client: no failed request during the reloads' or diag $client;
cmp_ok $ok_n // 0, '>', 100, 'Perl keep-alive client: requests were answered';
my %seen = map { $_ => 1 } split /,/, $versions // '';
ok $seen{$_}, "Perl client saw version $_" for (1, 5);

SKIP: {
    skip 'wrk not installed', 4 unless $wrk_pid;
    ok reap_child($wrk_pid, 30), 'wrk finished';
    my $out = $s->read_file('wrk.out') // '';
    diag join "\n", grep { /requests in|errors|Non-2xx|rc=/ } split /\n/, $out;
    like $out, qr/^rc=0$/m, 'wrk exit 0';
    my ($n) = $out =~ /(\d+) requests in/;
    cmp_ok $n // 0, '>', 0, "wrk: requests were answered";
    ok $out =~ /requests in/ && $out !~ /Socket errors|Non-2xx/, "wrk: zero errors over $reloads reloads"
        or diag $out;
}

# old workers are gone: only the two of the last generation remain
ok $s->wait_workers(2, 10), 'old workers exited, two remain';
my $err = $s->error_log;
unlike $err, qr/exited on signal/, 'no worker crashed';
my $gone = () = $err =~ /worker process \d+ exited with code 0/g;
cmp_ok $gone, '>=', 10, "old workers exited cleanly ($gone)";

# A good reload after the refused one is taken again
conf_version(6);
ok reload_by_command(), 'reload after a refused one';
ok wait_for(5, sub { ($s->get('/')->{body} // '') eq 'version 6' }), 'version 6 served';

is $s->stop, 0, 'master exits 0';
done_testing;

#!/usr/bin/perl
# Issue 8, backend faults under load (FastCGI gateway): while 4 Perl clients
# (and wrk, when installed) keep requesting two fastcgi_pass locations, one
# per request connection and one through an upstream keepalive pool with
# fastcgi_keep_conn, the backend (build/peers/fcgi_hello) is killed with
# SIGKILL and restarted on the same port, twice. Every client request must
# get a complete response with status 200, 502, 503 or 504 (none hangs past
# 5 s, none is cut), the worker must not die, and once the backend is back
# everything is 200 again.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin free_port wait_for pid_alive);
use Test::Portico::Peers qw(find_tool);

need_bin();

my $CLIENTS = 4;
my $LOAD_SECS = 6;

my $s = Test::Portico->new;
my $bport = free_port($s->port);
my $hello = Test::Portico::Peers->fcgi_hello($s, name => 'hello0', port => $bport);
$s->conf(<<"CONF");
    upstream pool {
        server 127.0.0.1:$bport;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        fastcgi_connect_timeout 2s;
        fastcgi_read_timeout 3s;
        fastcgi_send_timeout 3s;
        location /once { fastcgi_pass 127.0.0.1:$bport; include %%CONF%%/fastcgi.conf; }
        location /keep { fastcgi_pass pool; fastcgi_keep_conn on; include %%CONF%%/fastcgi.conf; }
    }
CONF
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };
ok $worker, 'one worker running';

# One request on a new connection: its status, 0 when no complete response
# came within 5 s (a hang or a cut).
sub status_of {
    my ($path) = @_;
    my $raw = eval { $s->http("GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n", timeout => 5) } // '';
    my ($r) = parse_response($raw);
    return 0 unless $r;
    return 0 if $r->{status} == 200 && $r->{body} ne 'hello';
    return $r->{status};
}
is status_of('/once'), 200, 'backend answers before the faults';
is status_of('/keep'), 200, 'pooled backend answers before the faults';

# ---------------------------------------------------------------- load
my $out = $s->dir . '/clients';
mkdir $out;
my @kids;
for my $k (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my %n;
        my $end = time + $LOAD_SECS;
        my $i = 0;
        while (time < $end) {
            my $path = ($i++ % 2 ? '/keep' : '/once') . "?c=$k&i=$i";
            my $t0 = time;
            my $st = status_of($path);
            $n{$st}++;
            $n{slow}++ if time - $t0 > 4;
        }
        open my $fh, '>', "$out/$k" or POSIX::_exit(1);
        print {$fh} join(' ', map { "$_=$n{$_}" } sort keys %n), "\n";
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
my $wrk_bin = find_tool('wrk');
my $wrk_out = $s->dir . '/wrk.out';
my $wrk;
if ($wrk_bin) {
    $wrk = Test::Portico::Peers->spawn(
        cmd => [ $wrk_bin, '-t1', '-c8', "-d${LOAD_SECS}s", '--timeout', '4s', 'http://127.0.0.1:' . $s->port . '/keep' ],
        log => $wrk_out, name => 'wrk',
    );
}

# the faults: SIGKILL the backend, restart it on the same port, twice
my $t0 = time;
my @events;
for my $round (1 .. 2) {
    sleep 1;
    my $old = $hello->pid;
    $hello->stop('KILL');
    push @events, sprintf('%.1f s: kill -9 %d', time - $t0, $old);
    sleep 1;
    $hello = Test::Portico::Peers->fcgi_hello($s, name => "hello$round", port => $bport);
    push @events, sprintf('%.1f s: restarted as %d', time - $t0, $hello->pid);
}
diag join '; ', @events;

my $all_done = wait_for($LOAD_SECS + 15, sub { !grep { waitpid($_, WNOHANG) == 0 } @kids });
ok $all_done, 'all clients finished in time (no request hung)';
if (!$all_done) { kill 'KILL', @kids; waitpid($_, 0) for @kids }

my %tot;
for my $k (1 .. $CLIENTS) {
    my $line = $s->read_file("$out/$k") // '';
    $tot{$1} += $2 while $line =~ /(\w+)=(\d+)/g;
}
my $total = 0;
$total += $tot{$_} for grep { /^\d+$/ } keys %tot;
diag "client statuses: " . join(', ', map { "$_ x$tot{$_}" } sort keys %tot) . " ($total requests)";
ok $total >= 100, "the load ran ($total requests)";
is $tot{0} // 0, 0, 'every request got a complete response';
my @other = grep { /^\d+$/ && !/^(?:0|200|502|503|504)$/ } keys %tot;
is "@other", '', 'statuses are only 200, 502, 503, 504';
ok(($tot{502} // 0) + ($tot{503} // 0) + ($tot{504} // 0) > 0, 'the faults were seen (5xx while the backend was down)');
is $tot{slow} // 0, 0, 'no request took more than 4 s';

if ($wrk) {
    wait_for($LOAD_SECS + 10, sub { !$wrk->alive });
    $wrk->stop;
    my $w = $s->read_file($wrk_out) // '';
    my ($reqs) = $w =~ /(\d+) requests in/;
    my ($non2xx) = $w =~ /Non-2xx or 3xx responses: (\d+)/;
    my ($errs) = $w =~ /Socket errors: ([^\n]+)/;
    diag sprintf 'wrk -c8 on /keep: %s requests, %s non-2xx, socket errors: %s',
        $reqs // '?', $non2xx // 0, $errs // 'none';
    my ($timeouts) = ($errs // '') =~ /timeout (\d+)/;
    is $timeouts // 0, 0, 'wrk: no request timed out (4 s)';
}

# ---------------------------------------------------------------- after
my $ok = 1;
for (1 .. 10) { $ok = 0 if status_of('/once') != 200 || status_of('/keep') != 200 }
ok $ok, '20 requests after the faults: all 200';
ok pid_alive($worker), 'the same worker is alive';
my $log = $s->error_log;
unlike $log, qr/exited on signal/, 'no worker died (master log)';
$s->client_log_ok(name => 'upstream error lines');
$s->stop;
$hello->stop;
done_testing;

#!/usr/bin/perl
# Issue 8, fd exhaustion: the server runs under `ulimit -n 64` (a sh wrapper
# execs the real binary, so the master's pid is the one Test::Portico
# forked) with worker_connections well above it, and we open more
# connections than it has descriptors. accept() then fails with EMFILE: the
# worker must not spin on the still-readable listener (its CPU time from
# /proc/PID/stat grows < 1 s over 3 s of exhaustion), must log the failure
# rate-limited, must keep serving the connections it holds, and must accept
# again once descriptors are free.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(sysconf);
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin wait_for pid_alive);

need_bin();

my $LIMIT = 64;
my $HOLD = 200;
my $fd_limit = `sh -c 'ulimit -n'` + 0 || 1024;
plan skip_all => "ulimit -n $fd_limit: cannot hold $HOLD client connections" if $fd_limit < $HOLD + 50;

my $s = Test::Portico->new;
my $real = $s->bin;
my $wrapper = $s->write_file('limited.sh', "#!/bin/sh\nulimit -n $LIMIT || exit 99\nexec '$real' \"\$\@\"\n");
chmod 0755, $wrapper;
$s->{bin} = $wrapper;    # Test::Portico::start execs $s->bin

$s->raw_conf(<<"CONF");
daemon off;
master_process on;
worker_processes 1;
error_log logs/error.log info;
pid logs/portico.pid;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        client_header_timeout 30s;
        keepalive_timeout 30s;
        location / { return 200 "ok\\n"; }
    }
}
CONF
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };
ok $worker, 'one worker running';
my $lim = do { open my $fh, '<', "/proc/$worker/limits"; local $/; my $t = <$fh> // ''; $t =~ /Max open files\s+(\d+)/ ? $1 : '?' };
is $lim, $LIMIT, "worker runs with Max open files $LIMIT";

my $TCK = sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub cpu_secs {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return undef;
    my ($rest) = (<$fh> // '') =~ /\)\s(.*)$/s or return undef;
    my @f = split ' ', $rest;    # f[11] utime, f[12] stime (fields 14, 15)
    return ($f[11] + $f[12]) / $TCK;
}

# Each held connection has sent a request line (the listener uses
# TCP_DEFER_ACCEPT: a silent connection is not even handed to accept()).
# ask() completes the head and waits for the answer.
my $LINE = "GET / HTTP/1.1\r\n";
sub ask {
    my ($c) = @_;
    syswrite $c, "Host: localhost\r\n\r\n" or return 0;
    my ($in, $deadline) = ('', time + 3);
    while (time < $deadline && IO::Select->new($c)->can_read($deadline - time)) {
        my $n = sysread($c, my $buf, 4096);
        last unless $n;
        $in .= $buf;
        last if $in =~ /\r\n\r\nok\n/;
    }
    my ($r) = parse_response($in, incomplete_ok => 1);
    return $r && $r->{status} == 200 ? 1 : 0;
}

sub get_ok {
    my $raw = eval { $s->http("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n", timeout => 3) } // '';
    my ($r) = parse_response($raw);
    return $r && $r->{status} == 200;
}
ok get_ok(), 'answers before exhaustion';

# ---------------------------------------------------------------- exhaust
$SIG{PIPE} = 'IGNORE';
my (@held, $fail);
for (1 .. $HOLD) {
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Proto => 'tcp', Timeout => 0.5);
    if ($c) { syswrite $c, $LINE; push @held, $c } else { $fail++ }
}
diag scalar(@held) . " client connections open, " . ($fail // 0) . ' connects timed out (backlog full)';
sleep 0.5;    # let the worker take what it can

# The oldest held connections are the ones the worker accepted before it ran
# out of descriptors: they must still be served.
my $answered = 0;
$answered += ask($held[$_]) for 0 .. 4;
ok $answered >= 1, "$answered of the 5 oldest connections answered while fds are exhausted";

my $cpu0 = cpu_secs($worker);
my $t0 = time;
my $log0 = () = $s->error_log =~ /accept\(\) failed/g;
# keep knocking: new connections (they queue or time out) during 3 s
my $knocks = 0;
while (time - $t0 < 3) {
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Proto => 'tcp', Timeout => 0.2);
    $knocks++;
    if ($c && @held < $fd_limit - 50) { syswrite $c, $LINE; push @held, $c }
    sleep 0.05;
}
my $dt = time - $t0;
my $cpu = cpu_secs($worker) - $cpu0;
diag sprintf 'worker CPU time over %.1f s of exhaustion: %.2f s (%d more connects tried)', $dt, $cpu, $knocks;
ok $cpu < 1, sprintf('no busy loop: worker used %.2f s CPU in %.1f s', $cpu, $dt);
ok pid_alive($worker), 'worker alive during exhaustion';

my $errlog = $s->error_log;
my $accept_lines = (() = $errlog =~ /accept\(\) failed/g);
my ($reason) = $errlog =~ /(accept\(\) failed[^\n]*)/;
diag "accept errors logged: $accept_lines lines in all" . ($reason ? " (e.g. \"$reason\")" : '');
ok $accept_lines >= 1, 'accept failure logged';
ok $accept_lines - $log0 <= int($dt) + 2, sprintf('rate-limited: %d lines during %.1f s', $accept_lines - $log0, $dt);

# ---------------------------------------------------------------- recovery
close $_ for @held;
@held = ();
my $t_rec = time;
my $back = wait_for(10, sub { get_ok() });
ok $back, 'accepts and answers again once descriptors are free';
diag sprintf 'recovered %.2f s after the connections were closed', time - $t_rec;
my $all = 1;
get_ok() or $all = 0 for 1 .. 20;
ok $all, '20 more requests answered';
ok pid_alive($worker), 'the same worker is alive';
unlike $s->error_log, qr/exited on signal|\[emerg\]/, 'no crash in the error log';
$s->stop;
done_testing;

#!/usr/bin/perl
# Issue 8, connection flood: far more connections than worker_connections
# (64 here, one worker). The excess must be refused (closed at once) or left
# queued, never crash or wedge the worker; "worker_connections are not
# enough" is logged at most about once per second however long the flood
# lasts; the connections the worker did take are still served during the
# flood; and once the flood ends a normal request is answered again.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin wait_for pid_alive);

need_bin();

my $WC = 64;
my $FLOOD_SECS = 4;
my $fd_limit = `sh -c 'ulimit -n'` + 0 || 1024;
my $MAX_HOLD = $fd_limit - 50 < 600 ? $fd_limit - 50 : 600;
plan skip_all => "ulimit -n $fd_limit is too low for a flood of 4 x worker_connections" if $MAX_HOLD < 4 * $WC;

my $s = Test::Portico->new;
$s->write_file('html/a.txt', "small file\n");
$s->raw_conf(<<"CONF");
daemon off;
master_process on;
worker_processes 1;
error_log logs/error.log info;
pid logs/portico.pid;
events { worker_connections $WC; }
http {
    access_log logs/access.log;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        client_header_timeout 30s;
        keepalive_timeout 30s;
        root %%ROOT%%/html;
    }
}
CONF
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };
ok $worker, 'one worker running';
my $master = $s->master_pid;

sub get_ok {
    my $raw = eval { $s->http("GET /a.txt HTTP/1.0\r\nHost: localhost\r\n\r\n", timeout => 3) } // '';
    my ($r) = parse_response($raw);
    return $r && $r->{status} == 200;
}
ok get_ok(), 'answers before the flood';

# ---------------------------------------------------------------- flood
$SIG{PIPE} = 'IGNORE';
my $log_before = () = $s->error_log =~ /worker_connections are not enough/g;
my (%held, $attempts, $connect_fail, $closed_by_server);
my $sel = IO::Select->new;
my $t_start = time;
my $t_end = $t_start + $FLOOD_SECS;
while (time < $t_end) {
    # a burst of new connections every 100 ms, up to the fd budget
    for (1 .. 40) {
        last if keys %held >= $MAX_HOLD;
        $attempts++;
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Proto => 'tcp', Timeout => 0.5);
        if (!$c) { $connect_fail++; next }
        $held{ fileno $c } = { sock => $c, t0 => time };
        $sel->add($c);
    }
    # the ones the server closed (EOF or reset) are dropped, making room
    my $until = time + 0.1;
    while ((my $left = $until - time) > 0) {
        my @r = $sel->can_read($left) or last;
        for my $c (@r) {
            my $n = sysread($c, my $buf, 1024);
            next if $n;
            $closed_by_server++;
            delete $held{ fileno $c };
            $sel->remove($c);
            close $c;
        }
    }
}
my $flood_secs = time - $t_start;
my $open_now = keys %held;
diag sprintf "flood: %d connection attempts in %.1f s, %d closed at once by the server, %d connect failures "
    . "(queue full), %d still open", $attempts, $flood_secs, $closed_by_server // 0, $connect_fail // 0, $open_now;
ok $attempts >= 4 * $WC, "flooded with $attempts connections (worker_connections $WC)";
ok $closed_by_server || $connect_fail, 'the excess was refused';
ok pid_alive($worker) && pid_alive($master), 'master and worker alive during the flood';

# The oldest held connections are the ones the worker accepted: they are
# served in the middle of the flood.
my @oldest = sort { $held{$a}{t0} <=> $held{$b}{t0} } keys %held;
my $served = 0;
for my $fd (@oldest[0 .. 4]) {
    next unless defined $fd;
    my $c = $held{$fd}{sock};
    syswrite $c, "GET /a.txt HTTP/1.0\r\nHost: localhost\r\n\r\n";
    my ($in, $deadline) = ('', time + 3);
    while (time < $deadline && IO::Select->new($c)->can_read($deadline - time)) {
        my $n = sysread($c, my $buf, 4096);
        last unless $n;
        $in .= $buf;
    }
    my ($r) = parse_response($in);
    $served++ if $r && $r->{status} == 200;
}
ok $served >= 1, "$served of 5 accepted connections answered during the flood";

# ---------------------------------------------------------------- log rate
my $elapsed = time - $t_start;
my $log_lines = (() = $s->error_log =~ /worker_connections are not enough/g) - $log_before;
diag sprintf '"worker_connections are not enough": %d lines over %.1f s of flood', $log_lines, $elapsed;
ok $log_lines >= 1, 'the refusal is logged';
ok $log_lines <= int($elapsed) + 2, "logged at most about once per second ($log_lines lines in ${\ sprintf '%.1f', $elapsed} s)";

# ---------------------------------------------------------------- recovery
close $held{$_}{sock} for keys %held;
%held = ();
my $t_rec = time;
my $back = wait_for(10, sub { get_ok() });
ok $back, 'answers again once the flood ends';
diag sprintf 'recovered %.2f s after the flood connections were closed', time - $t_rec;
my $all = 1;
get_ok() or $all = 0 for 1 .. 20;
ok $all, '20 more requests answered after the flood';
ok pid_alive($worker), 'the same worker is alive';
unlike $s->error_log, qr/exited on signal|\[emerg\]/, 'no worker crash in the error log';
$s->stop;
done_testing;

#!/usr/bin/perl
# Issue 8, idle keep-alive connections: 10 000 clients each make one HTTP/1.1
# request and then stay connected, idle. Reported (diag): the worker's VmRSS
# before and after, and the growth per idle connection; the same figure for
# nginx on the same server block, measured the same way, when nginx is
# installed. Asserted: every connection was served, the idle ones are still
# open, one of them takes a second request, the server still answers a new
# client, and (a regression guard, not the goal) Portico's figure is at most
# twice nginx's. The test raises its soft descriptor limit (the server and the
# client, both children or itself, need 10 000 each); a hard limit below
# that reduces the count.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVTIMEO pack_sockaddr_in inet_aton);
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin free_port pid_alive);
use Test::Portico::Peers qw(find_tool);

need_bin();

my $hard = `sh -c 'ulimit -Hn'` + 0 || 1024;
my $N = $hard - 200 < 10000 ? $hard - 200 : 10000;
plan skip_all => "ulimit -Hn $hard leaves room for only $N connections" if $N < 500;
system('prlimit', "--pid=$$", '--nofile=' . ($N + 200) . ':') if `sh -c 'ulimit -n'` + 0 < $N + 200;
my $WC = $N + 100;    # worker_connections

my $server_block = <<'BLOCK';
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        keepalive_timeout 60s;
        keepalive_requests 1000;
        location / { return 200 "ok\n"; }
    }
BLOCK

my $s = Test::Portico->new;
(my $block = $server_block) =~ s/%%PORT%%/$s->port/e;
$s->raw_conf(<<"CONF");
daemon off;
master_process on;
worker_processes 1;
error_log logs/error.log info;
pid logs/portico.pid;
events { worker_connections $WC; }
http {
    access_log off;
$block
}
CONF
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };
ok $worker, 'one worker running';

sub rss_kb {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return undef;
}

# Reads one "ok" response on $c (HTTP/1.1, Content-Length).
sub read_ok {
    my ($c) = @_;
    my ($in, $deadline) = ('', time + 5);
    my $sel = IO::Select->new($c);
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($c, my $buf, 4096);
        last unless $n;
        $in .= $buf;
        last if $in =~ /\r\n\r\nok\n$/;
    }
    return $in =~ m{^HTTP/1\.1 200 .*\r\n\r\nok\n$}s ? 1 : 0;
}

# Opens $n keep-alive connections to $port, one request each, left idle.
# Returns (connections, served count, RSS before, RSS after) of $pid. Plain
# sockets with a receive timeout, in batches (connect and send 100, then read
# their answers): IO::Socket and a select per connection would make the
# client, not the server, the slow part of 10 000 connections.
sub idle_rss {
    my ($port, $pid, $n) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my $addr = pack_sockaddr_in($port, inet_aton('127.0.0.1'));
    my $rcvtimeo = pack('l!l!', 5, 0);
    my $open = sub {
        socket(my $c, PF_INET, SOCK_STREAM, 0) or return undef;
        setsockopt($c, SOL_SOCKET, SO_RCVTIMEO, $rcvtimeo);
        connect($c, $addr) or return undef;
        syswrite($c, $req) == length $req or return undef;
        return $c;
    };
    my $answered = sub {
        my ($c) = @_;
        my $in = '';
        while ($in !~ /\r\n\r\nok\n$/) {
            my $got = sysread($c, $in, 4096, length $in);
            last unless $got;
        }
        return $in =~ m{^HTTP/1\.1 200 .*\r\n\r\nok\n$}s ? 1 : 0;
    };
    # warm up: allocator arenas and caches in place before the baseline
    for (1 .. 50) { my $c = $open->() or next; $answered->($c) }
    sleep 0.3;
    my $before = rss_kb($pid);
    my (@conns, $served);
    while (@conns < $n) {
        my @batch;
        for (1 .. ($n - @conns < 100 ? $n - @conns : 100)) { push @batch, $open->() // last }
        last unless @batch;
        $served += $answered->($_) for @batch;
        push @conns, @batch;
        last if @batch < 100 && @conns < $n;
    }
    sleep 0.5;
    my $after = rss_kb($pid);
    return (\@conns, $served // 0, $before, $after);
}

my ($conns, $served, $before, $after) = idle_rss($s->port, $worker, $N);
is scalar(@$conns), $N, "$N connections opened";
is $served, $N, 'every connection served its request';
my $per = $after && $before ? ($after - $before) * 1024 / $N : 0;
diag sprintf 'Portico worker VmRSS: %d kB before, %d kB with %d idle keep-alive connections: %.0f bytes per connection',
    $before // 0, $after // 0, $N, $per;

# the idle ones are still open (not closed before keepalive_timeout)
my $closed = 0;
my $sel = IO::Select->new(@$conns);
for my $c ($sel->can_read(0.2)) { my $n = sysread($c, my $b, 1); $closed++ unless $n }
is $closed, 0, 'no idle connection was closed';
my $ka = $conns->[ int($N / 2) ];
syswrite $ka, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
ok read_ok($ka), 'an idle connection takes a second request';
my $fresh = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Proto => 'tcp', Timeout => 3);
ok $fresh && syswrite($fresh, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n") && read_ok($fresh),
    'a new client is answered with all of them open';
close $_ for @$conns;
ok pid_alive($worker), 'worker alive';
$s->stop;

# ---------------------------------------------------------------- nginx, same block
SKIP: {
    my $nginx = find_tool('/usr/sbin/nginx', 'nginx') or skip 'nginx not installed: no comparison figure', 1;
    my $nport = free_port();
    my $dir = $s->dir . '/nginx';
    mkdir $dir;
    mkdir "$dir/$_" for qw(logs tmp);
    (my $nblock = $server_block) =~ s/%%PORT%%/$nport/;
    $s->write_file("$dir/nginx.conf", <<"CONF");
daemon off;
master_process off;
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;
events { worker_connections $WC; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$nblock
}
CONF
    my $ngx = eval {
        Test::Portico::Peers->spawn(
            cmd => [ $nginx, '-p', "$dir/", '-e', "$dir/logs/startup.log", '-c', "$dir/nginx.conf" ],
            log => "$dir/logs/stderr.log", addr => "127.0.0.1:$nport", name => 'nginx',
        );
    } or skip "nginx did not start: $@", 1;
    my ($nc, $ns, $nb, $na) = idle_rss($nport, $ngx->pid, $N);
    my $nper = $na && $nb ? ($na - $nb) * 1024 / $N : 0;
    diag sprintf 'nginx (master_process off) VmRSS: %d kB before, %d kB with %d idle keep-alive connections: '
        . '%.0f bytes per connection', $nb // 0, $na // 0, scalar(@$nc), $nper;
    diag sprintf 'Portico / nginx per idle connection: %.2f (issue 8 goal <= 1; reported, not asserted)',
        $nper ? $per / $nper : 0;
    is $ns, $N, 'nginx served the same connections (the comparison is like for like)';
    # RSS growth over 10 000 connections is pages, not noise: a guard against
    # a gross regression (a buffer kept per idle connection is 2-16 kB)
    SKIP: {
        skip 'sanitizer build: RSS is not comparable', 1 if $ENV{PORTICO_SANITIZER_DIR};
        ok $nper > 0 && $per <= 2 * $nper, sprintf 'Portico holds an idle connection in at most twice '
            . 'nginx\'s memory (%.0f vs %.0f bytes)', $per, $nper;
    }
    close $_ for @$nc;
    $ngx->stop;
}
done_testing;

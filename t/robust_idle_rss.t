#!/usr/bin/perl
# Issue 8, idle keep-alive connections: 2 000 clients each make one HTTP/1.1
# request and then stay connected, idle. Reported (diag): the worker's VmRSS
# before and after, and the growth per idle connection; the same figure for
# nginx on the same server block, measured the same way, when nginx is
# installed. Asserted: every connection was served, the idle ones are still
# open, and the server still answers a new client. (The issue's 10 000 needs
# more descriptors than a default test machine grants; the count is reduced
# to fit ulimit -n.)
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin free_port pid_alive);
use Test::Portico::Peers qw(find_tool);

need_bin();

my $fd_limit = `sh -c 'ulimit -n'` + 0 || 1024;
my $N = $fd_limit - 100 < 2000 ? $fd_limit - 100 : 2000;
plan skip_all => "ulimit -n $fd_limit leaves room for only $N connections" if $N < 500;

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
events { worker_connections 4096; }
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
# Returns (connections, served count, RSS before, RSS after) of $pid.
sub idle_rss {
    my ($port, $pid, $n) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    # warm up: allocator arenas and caches in place before the baseline
    for (1 .. 50) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 3) or next;
        syswrite $c, $req;
        read_ok($c);
    }
    sleep 0.3;
    my $before = rss_kb($pid);
    my (@conns, $served);
    for (1 .. $n) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 3) or last;
        syswrite $c, $req;
        $served += read_ok($c);
        push @conns, $c;
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
events { worker_connections 4096; }
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
    close $_ for @$nc;
    $ngx->stop;
}
done_testing;

#!/usr/bin/perl
# Issue 8, backend faults under load (HTTP proxy gateway): wrk keeps two
# proxy_pass locations busy (one connection per request, one through a
# keep-alive pool) while the upstream (build/peers/http_hello) is killed
# with SIGKILL and restarted on the same port, twice. Every request gets a
# response (2xx or 502/504): wrk sees no socket error and no timeout, the
# worker survives, and afterwards everything is 200 again.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use Test::Portico qw(need_bin free_port wait_for pid_alive);
use Test::Portico::Peers qw(find_tool);

need_bin();
my $wrk = find_tool('wrk') or plan skip_all => 'wrk not installed';
my $build = $ENV{PORTICO_BUILD} || 'build';
-x "$build/peers/http_hello" or plan skip_all => 'build/peers/http_hello missing';

my $s = Test::Portico->new(worker_processes => 1);
my $port = free_port($s->port);
sub upstream {
    Test::Portico::Peers->spawn(
        cmd => [ "$build/peers/http_hello", '-l', "127.0.0.1:$port" ],
        log => $s->dir . '/http_hello.log', addr => "127.0.0.1:$port", name => 'http_hello',
    );
}
my $up = upstream();
$s->conf(<<"CONF");
    upstream pool { server 127.0.0.1:$port; keepalive 8; }
    server {
        listen 127.0.0.1:%%PORT%%;
        proxy_connect_timeout 2s;
        proxy_read_timeout 3s;
        location /once { proxy_pass http://127.0.0.1:$port; }
        location /keep { proxy_pass http://pool; }
    }
CONF
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };
ok $worker, 'one worker';
is $s->get('/keep')->{status}, 200, 'upstream answers before the faults';

my @kids;
for my $path ('/once', '/keep') {
    my $pid = fork // die;
    if (!$pid) {
        my $out = `$wrk -t1 -c8 -d7s --timeout 5s http://127.0.0.1:@{[$s->port]}$path 2>&1`;
        open my $o, '>', $s->dir . "/wrk$path.out" =~ s{/(?=[^/]*$)}{_}r or die;
        print $o $out;
        exit 0;
    }
    push @kids, $pid;
}
for (1 .. 2) {
    sleep 1.5;
    $up->stop('KILL');
    sleep 1;
    $up = upstream();
}
waitpid $_, 0 for @kids;
for my $path ('/once', '/keep') {
    my $file = $s->dir . "/wrk$path.out" =~ s{/(?=[^/]*$)}{_}r;
    open my $i, '<', $file or die "$file: $!";
    my $out = do { local $/; <$i> };
    my ($n) = $out =~ /(\d+) requests in/;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    diag "$path: " . ($n // 0) . " requests, " . ($non2xx // 0) . " answered 502/504";
    ok $n && $n > 100, "$path: load ran";
    unlike $out, qr/Socket errors/, "$path: no request failed without an answer (no socket error, no timeout)";
}
ok pid_alive($worker), 'the worker survived';
unlike $s->error_log, qr/exited on signal/, 'no worker crash';
$s->client_log_ok(name => 'upstream error lines');
ok wait_for(5, sub { $s->get('/keep')->{status} == 200 }), 'pooled location answers 200 again';
is $s->get('/once')->{status}, 200, 'direct location answers 200 again';
done_testing;

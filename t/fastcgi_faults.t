#!/usr/bin/perl
# fastcgi_pass when the backend misbehaves. Each fault is a tiny Perl peer
# (Test::Portico::Peers->perl_peer): nothing listening, a reset in the
# middle of the body, a stall past fastcgi_read_timeout, bytes that are not
# FastCGI, a 64 KiB header block, a close before END_REQUEST, a backend that
# dies and comes back, and an upstream whose first server is down. Each one
# must give the right status and one explaining log line, and the same
# worker must go on serving a normal request afterwards.
use strict;
use warnings;
use Test::More;
use IO::Select;
use Time::HiRes qw(sleep);
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::Portico qw(parse_response need_bin free_port wait_for);
use Test::Portico::Peers;

need_bin();

my $P = 'Test::Portico::Peers';

# Serves every connection with $answer->($client, $id, $params, $stdin);
# a connection whose request never completes is dropped.
sub peer {
    my (%o) = @_;
    return $P->perl_peer(%o, code => sub {
        my $srv = shift;
        while (my $c = $srv->accept) {
            binmode $c;
            my ($id, $keep, $params, $stdin) = Test::Portico::Peers::read_fcgi_request($c, 10);
            if (defined $id) { $o{answer}->($c, $id, $params, $stdin) }
            close $c;
        }
    });
}

sub ok_answer {
    my ($c, $id) = @_;
    syswrite $c, Test::Portico::Peers::fcgi_stdout($id, "Content-Type: text/plain\r\n\r\nok from perl\n")
        . Test::Portico::Peers::fcgi_end($id);
}

my $good = peer(answer => \&ok_answer);
my $reset = peer(answer => sub {
    my ($c, $id) = @_;
    syswrite $c, Test::Portico::Peers::fcgi_stdout($id, "Content-Type: text/plain\r\n\r\n" . ('x' x 20000));
    sleep 0.3;
    # SO_LINGER 0: close() sends RST instead of FIN
    setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
});
my $stall = peer(answer => sub { my $c = shift; sleep 30 });
my $garbage = peer(answer => sub {
    my $c = shift;
    syswrite $c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nI am not a FastCGI app\n";
});
my $big_head = peer(answer => sub {
    my ($c, $id) = @_;
    my $head = "Content-Type: text/plain\r\n";
    $head .= sprintf("X-Big-%04d: %s\r\n", $_, 'h' x 100) for 1 .. 640;    # ~ 70 KiB
    syswrite $c, Test::Portico::Peers::fcgi_stdout($id, "$head\r\nbody\n") . Test::Portico::Peers::fcgi_end($id);
});
my $close_early = peer(answer => sub { });    # reads the request, closes: nothing sent
my $close_mid = peer(answer => sub {
    my ($c, $id) = @_;
    # a whole head and body, then a close with no empty STDOUT, no END_REQUEST
    syswrite $c, Test::Portico::Peers::fcgi_stdout($id, "Content-Type: text/plain\r\n\r\n" . ('y' x 5000));
});
my $refused_port = free_port();
my $phoenix_port = free_port($refused_port);
my $dead_port = free_port($refused_port, $phoenix_port);

my $s = Test::Portico->new;
$s->write_file('html/static.txt', "static ok\n");
my $loc = sub {
    my ($path, $pass, $extra) = @_;
    $extra //= "";
    return "        location $path { fastcgi_pass $pass; include %%CONF%%/fastcgi.conf; $extra }\n";
};
$s->conf(<<"CONF");
    upstream two {
        server 127.0.0.1:$dead_port;
        server ${\ $good->addr};
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        fastcgi_read_timeout 1s;
        fastcgi_connect_timeout 2s;
        location /static.txt { }
${\ $loc->('/good', $good->addr)}
${\ $loc->('/refused', "127.0.0.1:$refused_port")}
${\ $loc->('/reset', $reset->addr)}
${\ $loc->('/stall', $stall->addr)}
${\ $loc->('/garbage', $garbage->addr)}
${\ $loc->('/bighead', $big_head->addr, 'fastcgi_buffer_size 8k;')}
${\ $loc->('/close_early', $close_early->addr)}
${\ $loc->('/close_mid', $close_mid->addr)}
${\ $loc->('/phoenix', "127.0.0.1:$phoenix_port")}
${\ $loc->('/two', 'two')}
    }
CONF
$s->start;
my @workers = @{ $s->wait_workers(1) || [] };
is scalar @workers, 1, 'one worker';

sub get {
    my ($path, %o) = @_;
    my $raw = $s->http("GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", timeout => $o{timeout} // 10);
    my ($r) = parse_response($raw);
    return ($r, $raw);
}

# after every fault: the worker is the same and serves static and FastCGI
sub still_serving {
    my $what = shift;
    my ($r) = get('/static.txt');
    is $r && $r->{status}, 200, "$what: static file still served";
    ($r) = get('/good');
    is $r && $r->{body}, "ok from perl\n", "$what: a good backend still served";
    is_deeply [ $s->worker_pids ], \@workers, "$what: same worker (no crash)";
}

sub log_has {
    my ($re, $name) = @_;
    ok wait_for(3, sub { $s->error_log =~ $re }), $name or diag $s->error_log;
}

my ($r, $raw) = get('/good');
is $r->{status}, 200, 'the good peer answers';
is $r->{body}, "ok from perl\n", 'good body';

# ---- nothing listening
($r) = get('/refused');
is $r->{status}, 502, 'refused -> 502';
log_has(qr/connect\(\) .*failed \(111: Connection refused\).*127\.0\.0\.1:$refused_port/, 'refused: log line');
still_serving('refused');

# ---- reset in the middle of the body: the head was sent, so the client
# gets a cut response (no last chunk) and a closed connection
($r, $raw) = get('/reset');
like $raw, qr{^HTTP/1\.1 200 }, 'reset: the head had gone out';
{
    ok !defined $r, 'reset: the response is incomplete (no terminating chunk)';
}
unlike $raw, qr{x{20001}}, 'reset: no more body than the app sent';
log_has(qr/upstream reset the connection \(Connection reset by peer\)|upstream prematurely closed/, 'reset: log line');
still_serving('reset');

# ---- stall past fastcgi_read_timeout
($r) = get('/stall');
is $r->{status}, 504, 'stall -> 504';
log_has(qr/upstream timed out .* while reading response header from upstream/, 'stall: log line');
still_serving('stall');

# ---- not FastCGI
($r) = get('/garbage');
is $r->{status}, 502, 'garbage -> 502';
log_has(qr/upstream sent an invalid FastCGI record/, 'garbage: log line');
still_serving('garbage');

# ---- a header block larger than fastcgi_buffer_size
($r) = get('/bighead');
is $r->{status}, 502, '64 KiB of headers -> 502';
log_has(qr/header block too large/, 'big head: log line');
still_serving('big head');

# ---- closes without END_REQUEST
($r) = get('/close_early');
is $r->{status}, 502, 'close before any output -> 502';
log_has(qr/app closed the connection before END_REQUEST/, 'close early: log line');
still_serving('close early');

($r, $raw) = get('/close_mid');
like $raw, qr{^HTTP/1\.1 200 }, 'close mid-body: the head had gone out';
{
    ok !defined $r, 'close mid-body: the response is incomplete, never passed as complete';
}
log_has(qr/upstream prematurely closed FastCGI stdout/, 'close mid-body: log line');
still_serving('close mid-body');

# ---- dies and comes back (a single server is never marked down, as nginx)
($r) = get('/phoenix');
is $r->{status}, 502, 'backend down -> 502';
my $phoenix = peer(port => $phoenix_port, answer => \&ok_answer);
($r) = get('/phoenix');
is $r->{status}, 200, 'backend back -> 200';
is $r->{body}, "ok from perl\n", 'backend back: its body';
$phoenix->stop;
($r) = get('/phoenix');
is $r->{status}, 502, 'backend gone again -> 502';
$phoenix = peer(port => $phoenix_port, answer => \&ok_answer);
($r) = get('/phoenix');
is $r->{status}, 200, 'and back again -> 200';
$phoenix->stop;
still_serving('phoenix');

# ---- next upstream: the first server is down
my $ok = 0;
for (1 .. 6) {
    ($r) = get('/two');
    $ok++ if $r && $r->{status} == 200 && $r->{body} eq "ok from perl\n";
}
is $ok, 6, 'upstream with the first server down: 6 of 6 requests answered by the second';
log_has(qr/127\.0\.0\.1:$dead_port/, 'next upstream: the failed server is logged');

unlike $s->error_log, qr/\[(alert|emerg)\]|signal \d+/, 'no alert or crash in the error log';
$s->stop;
$_->stop for $good, $reset, $stall, $garbage, $big_head, $close_early, $close_mid;
done_testing;

#!/usr/bin/perl
# fastcgi_multiplex on: several requests over one backend connection, each on
# its own request id, after FCGI_GET_VALUES says FCGI_MPXS_CONNS=1.
#  - Go's net/http/fcgi (t/peers/fcgi_app.go) multiplexes: 8 concurrent slow
#    requests share one connection (the app counts its accepted connections)
#    and take about one delay, not eight;
#  - a client that leaves mid-response costs its stream an ABORT_REQUEST
#    (counted by the app on the wire) and nothing else: the siblings finish
#    on the same connection;
#  - PHP-FPM says FCGI_MPXS_CONNS=0: one request per connection, as before;
#  - an app that never answers FCGI_GET_VALUES is served after the 1 s wait;
#  - a connection reset fails every stream on it with 502 and a log line each.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket ();
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin wait_for);
use Test::Portico::Peers qw(need_tool find_tool);

need_bin();
need_tool('Go FastCGI tests', 'go');

my $P = 'Test::Portico::Peers';
my $s = Test::Portico->new;
my $go = eval { $P->go_app($s, name => 'goapp') };
if (!$go) {
    plan tests => 1;
    fail('build and start t/peers/fcgi_app.go');
    diag $@;
    exit 1;
}
# the same binary again, with its abort counter: go_app has no option for it
my $aborts_file = $s->dir . '/goabort.count';
my $go2_port = Test::Portico::free_port();
my $go2 = $P->spawn(
    cmd => [ $P->build_go($s), '-l', "127.0.0.1:$go2_port", '-s', $s->dir . '/goapp2.count',
             '-a', $aborts_file ],
    log => $s->dir . '/goapp2.log', addr => "127.0.0.1:$go2_port", name => 'fcgi_app',
    extra => { count_file => $s->dir . '/goapp2.count' },
);
sub aborts { open my $fh, '<', $aborts_file or return 0; my $n = <$fh>; return ($n // 0) + 0 }

my $fpm;
if (find_tool('php-fpm8.2', 'php-fpm')) {
    $fpm = eval { $P->php_fpm($s, listen => 'tcp', name => 'fpm', children => 2) };
    diag "php-fpm: $@" unless $fpm;
    $s->write_file('html/hello.php', "<?php echo 'php ', getmypid(), \"\\n\";\n");
    chmod 0644, $s->dir . '/html/hello.php';
}

# an app that reads GET_VALUES and never answers, then serves requests
# one per connection (a plain FastCGI responder, as libfcgi built without
# management-record support behaves)
my $mute = $P->perl_peer(name => 'mute', code => sub {
    my $srv = shift;
    while (my $c = $srv->accept) {
        binmode $c;
        my ($id, $keep, $params, $stdin) = Test::Portico::Peers::read_fcgi_request($c, 5);
        next unless defined $id;    # the handshake connection: nothing but GET_VALUES
        print {$c} Test::Portico::Peers::fcgi_stdout($id, "Content-Type: text/plain\r\n\r\nmute ok\n"),
            Test::Portico::Peers::fcgi_end($id, 0);
        close $c;
    }
});

# an app that answers MPXS_CONNS=1, reads the requests, sends one STDOUT
# record for the first stream, then resets the connection
my $reset = $P->perl_peer(name => 'reset', code => sub {
    my $srv = shift;
    while (my $c = $srv->accept) {
        binmode $c;
        my $buf = '';
        my ($seen, $answered) = (0, 0);
        my $sel = IO::Select->new($c);
        my $until = time + 5;
        while (time < $until && $sel->can_read(1)) {
            sysread($c, $buf, 65536, length $buf) or last;
            while (length $buf >= 8) {
                my ($v, $type, $id, $len, $pad) = unpack 'CCnnC', $buf;
                last if length $buf < 8 + $len + $pad;
                substr($buf, 0, 8 + $len + $pad, '');
                if ($type == 9) {
                    my $nv = "\x0f\x01FCGI_MPXS_CONNS1";
                    print {$c} Test::Portico::Peers::fcgi_record(10, 0, $nv);
                }
                $seen++ if $type == 5 && $len == 0;    # a request's end of STDIN
            }
            last if $seen >= 3;
        }
        print {$c} Test::Portico::Peers::fcgi_stdout(1, "Content-Type: text/plain\r\n\r\npartial");
        sleep 0.3;
        setsockopt($c, Socket::SOL_SOCKET(), Socket::SO_LINGER(), pack('ii', 1, 0));
        close $c;
    }
});

my $fpm_loc = $fpm ? <<"LOC" : '';
        location ~ \\.php\$ {
            fastcgi_pass ${\ $fpm->addr};
            fastcgi_multiplex on;
        }
LOC
$s->conf(<<"CONF");
    upstream go_mux { server ${\ $go->addr}; }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        include %%CONF%%/fastcgi.conf;
        fastcgi_read_timeout 20s;
        fastcgi_multiplex on;
        location / { fastcgi_pass go_mux; }
        location /mute/ { fastcgi_pass ${\ $mute->addr}; }
        location /reset/ { fastcgi_pass ${\ $reset->addr}; }
$fpm_loc
    }
    # the Go app with the abort counter
    server {
        listen 127.0.0.1:%%PORT2%%;
        server_name localhost;
        root %%ROOT%%/html;
        include %%CONF%%/fastcgi.conf;
        fastcgi_read_timeout 20s;
        location / { fastcgi_pass ${\ $go2->addr}; fastcgi_multiplex on; }
    }
CONF
$s->start;
my @workers = @{ $s->wait_workers(1) || [] };

# Sends every request at once (to $PORT, else the first server); returns
# (responses in order, seconds taken).
our $PORT;
sub parallel {
    my (@paths) = @_;
    my $t0 = time;
    my (@socks, %in, %open);
    for my $i (0 .. $#paths) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $PORT // $s->port,
            Proto => 'tcp', Timeout => 5) or die "connect: $!";
        binmode $c;
        print {$c} "GET $paths[$i] HTTP/1.0\r\nHost: localhost\r\n\r\n";
        $socks[$i] = $c;
        $in{$i} = '';
        $open{$i} = 1;
    }
    my $deadline = time + 30;
    while (%open && time < $deadline) {
        my $sel = IO::Select->new(map { $socks[$_] } keys %open);
        for my $c ($sel->can_read(0.2)) {
            my ($i) = grep { $socks[$_] == $c } keys %open;
            my $n = sysread($c, my $b, 65536);
            if ($n) { $in{$i} .= $b } else { delete $open{$i}; close $c }
        }
    }
    my $took = time - $t0;
    my @r = map { (parse_response($in{$_}))[0] // { status => 0, body => '' } } 0 .. $#paths;
    return (\@r, $took);
}

# ---- 8 concurrent slow requests over one connection
my $before = $go->accepted;
my ($rs, $took) = parallel(map {"/slow?ms=300&i=$_"} 1 .. 8);
is scalar(grep { $_->{status} == 200 && $_->{body} eq "slow done\n" } @$rs), 8,
    '8 concurrent /slow requests through the multiplexed upstream: all 200';
is $go->accepted - $before, 1, '8 concurrent requests shared 1 backend connection';
diag sprintf '8 x /slow?ms=300 concurrently took %.2f s (serialised would be 2.4 s)', $took;

# the connection stays for the next requests: no new connection
($rs) = parallel(map {"/echo?j=$_"} 1 .. 4);
is scalar(grep { $_->{status} == 200 && $_->{body} =~ /QUERY=j=\d/ } @$rs), 4, '4 more requests: all 200';
is $go->accepted - $before, 1, 'they reused the idle multiplexed connection';

# ---- over max concurrency: 40 requests, ids 1..32 per connection
$before = $go->accepted;
($rs, $took) = parallel(map {"/slow?ms=200&k=$_"} 1 .. 40);
is scalar(grep { $_->{status} == 200 } @$rs), 40, '40 concurrent requests: all 200';
cmp_ok $go->accepted - $before, '<=', 1, '40 requests over the idle connection plus at most one more'
    or diag 'new connections: ' . ($go->accepted - $before);
diag sprintf '40 x /slow?ms=200 concurrently took %.2f s', $took;

# ---- a client that leaves mid-response aborts only its own stream
{
    my $b2 = $go2->accepted;
    local $PORT = $s->port2;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $PORT, Proto => 'tcp')
        or die "connect: $!";
    print {$c} "GET /drip?n=40&ms=100 HTTP/1.0\r\nHost: localhost\r\n\r\n";
    my $got = '';
    my $sel = IO::Select->new($c);
    my $until = time + 5;
    while ($got !~ /drip 2\n/ && time < $until && $sel->can_read(0.5)) {
        sysread($c, $got, 4096, length $got) or last;
    }
    like $got, qr/drip 1\n/, 'the dripping response had started';
    # siblings on the same connection, started before the client leaves
    my $pid = open my $kid, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my ($r) = parallel(map {"/slow?ms=800&s=$_"} 1 .. 3);
        print join(',', map { "$_->{status}:" . ($_->{body} =~ tr/\n//dr) } @$r), "\n";
        POSIX::_exit(0); # no destructors: the server and peers belong to the parent
    }
    sleep 0.2;
    setsockopt($c, Socket::SOL_SOCKET(), Socket::SO_LINGER(), pack('ii', 1, 0));
    close $c;    # a reset: the server notices on its next write
    my $line = <$kid>;
    close $kid;
    chomp(my $sib = $line // '');
    is $sib, join(',', ('200:slow done') x 3), 'the sibling streams completed';
    ok wait_for(5, sub { aborts() >= 1 }), 'the app got FCGI_ABORT_REQUEST for the abandoned stream';
    like $s->error_log, qr/FCGI_ABORT_REQUEST sent for request id \d+/, 'the abort is logged';
    is $go2->accepted - $b2, 1, 'one connection for the dripping stream and its siblings';
    # the connection lives on under the aborted stream
    my ($r) = parallel('/echo?after=abort');
    is $r->[0]{status}, 200, 'a request after the abort';
    is $go2->accepted - $b2, 1, 'still on the same backend connection';
}

# ---- an app that never answers FCGI_GET_VALUES
{
    my $t0 = time;
    my ($r) = parallel('/mute/x');
    is $r->[0]{status}, 200, 'an app that ignores FCGI_GET_VALUES is served';
    is $r->[0]{body}, "mute ok\n", 'its answer came through';
    diag sprintf 'first request to the mute app: %.2f s (handshake wait 1 s)', time - $t0;
    $t0 = time;
    ($r) = parallel('/mute/y');
    is $r->[0]{status}, 200, 'second request to the mute app';
    cmp_ok time - $t0, '<', 0.9, 'the verdict is cached: no second handshake wait';
    like $s->error_log, qr/fastcgi_multiplex: upstream "[^"]+" FCGI_GET_VALUES did not answer in 1 s/,
        'the fallback is logged';
}

# ---- a connection reset fails every stream on it
{
    my ($r) = parallel(map {"/reset/r$_"} 1 .. 3);
    my @st = sort map { $_->{status} } @$r;
    # the stream that got its head is truncated (200 and a cut body), the
    # others get 502
    is scalar(grep { $_ == 502 } @st), 2, 'a reset multiplexed connection: 502 for the streams without a head';
    my $log = $s->error_log;
    my $n = () = $log =~ /upstream reset the multiplexed connection before END_REQUEST|app closed the multiplexed connection before END_REQUEST/g;
    cmp_ok $n, '>=', 3, 'one log line per stream' or diag $log;
}

# ---- PHP-FPM says no: one request per connection
SKIP: {
    skip 'php-fpm not available', 4 unless $fpm;
    my ($r) = parallel(map {"/hello.php?p=$_"} 1 .. 4);
    is scalar(grep { $_->{status} == 200 && $_->{body} =~ /^php \d+/ } @$r), 4,
        'PHP-FPM with fastcgi_multiplex on: 4 concurrent requests, all 200';
    like $s->error_log, qr/fastcgi_multiplex: upstream "[^"]+" answered FCGI_MPXS_CONNS=0/,
        'PHP-FPM said FCGI_MPXS_CONNS=0 (logged once)';
    ($r) = parallel(map {"/hello.php?q=$_"} 1 .. 4);
    is scalar(grep { $_->{status} == 200 } @$r), 4, 'and again, from the cached verdict';
    my $hits = () = $fpm->access_log =~ /hello\.php/g;
    is $hits, 8, 'PHP-FPM served every request';
}

is_deeply [ $s->worker_pids ], \@workers, 'same worker after every request';
unlike $s->error_log, qr/\[(alert|emerg)\]|signal \d+/, 'no alert or crash in the error log';
$s->stop;
done_testing;

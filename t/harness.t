#!/usr/bin/perl
# The harness checks itself: ports, config generation, response parsing, the
# socket client, and start/stop against a stand-in server; then, if the real
# binary is there, one static file end to end.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response free_port pid_alive wait_for);

# ---- ports
{
    my $s = Test::Portico->new;
    my ($p1, $p2, $p3) = ($s->port, $s->port2, $s->port(3));
    like $p1, qr/^\d+$/, 'port is a number';
    isnt $p1, $p2, 'port and port2 differ';
    ok $p3 != $p1 && $p3 != $p2, 'port(3) differs from both';
    is $s->port, $p1, 'port is stable';
    is $s->port(2), $p2, 'port(2) is port2';
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => free_port(), Listen => 1, Proto => 'tcp');
    ok $l, 'free_port can be bound';

    # ---- files and config
    ok -d $s->dir . "/$_", "temp dir has $_/" for qw(logs html conf);
    $s->write_file('html/sub/x.txt', "abc");
    is $s->read_file('html/sub/x.txt'), 'abc', 'write_file creates directories';
    $s->conf("    server { listen 127.0.0.1:%%PORT%%; listen 127.0.0.1:%%PORT2%%; root %%ROOT%%/html; }\n"
        . "    include %%CONF%%/mime.types;\n", worker_processes => 3);
    my $c = $s->read_file('conf/portico.conf');
    like $c, qr/^daemon off;$/m, 'main: daemon off';
    like $c, qr/^worker_processes 3;$/m, 'main: worker_processes overridable';
    like $c, qr/^pid logs\/portico\.pid;$/m, 'main: pid';
    like $c, qr/^error_log logs\/error\.log \w+;$/m, 'main: error_log';
    like $c, qr/events \{\s+worker_connections 1024;/, 'events block';
    like $c, qr/listen 127\.0\.0\.1:$p1; listen 127\.0\.0\.1:$p2;/, '%%PORT%% and %%PORT2%%';
    my $dir = $s->dir;
    like $c, qr/root \Q$dir\E\/html;/, '%%ROOT%%';
    like $c, qr/include \Q${\Test::Portico::repo_dir()}\E\/conf\/mime\.types;/, '%%CONF%%';
    my @lines = split /\n/, $c;
    like $lines[ $s->conf_http_line - 1 ], qr/server \{ listen/, 'conf_http_line points at the caller text';
    like $c, qr/\n}\n\z/, 'http block closed';
    $s->raw_conf("x %%PORT%%;\n");
    is $s->read_file('conf/portico.conf'), "x $p1;\n", 'raw_conf substitutes only';
}

# ---- parse_response
{
    my $raw = "HTTP/1.1 100 Continue\r\n\r\n"
        . "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello"
        . "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n"
        . "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
        . "HTTP/1.1 204 No Content\r\n\r\n"
        . "HTTP/1.0 500 Internal Server Error\r\nServer: x\r\n\r\nrest of the body\r\nHTTP/1.1 200 OK\r\n";
    my @r = parse_response($raw);
    is scalar @r, 6, 'six responses';
    is_deeply [ map { $_->{status} } @r ], [ 100, 200, 404, 304, 204, 500 ], 'statuses in order';
    is $r[1]{body}, 'hello', 'content-length body';
    is $r[1]{headers}{'x-a'}, '1, 2', 'repeated headers joined, lowercase key';
    is scalar @{ $r[1]{header_list} }, 3, 'header_list keeps every line';
    is $r[2]{body}, 'abc0123456789abcdef', 'chunked body (with an extension)';
    is $r[2]{trailers}{'x-trailer'}, 't', 'chunked trailer';
    is $r[3]{body}, '', '304 has no body';
    is $r[3]{headers}{etag}, '"x"', 'quoted header value kept';
    is $r[5]{body}, "rest of the body\r\nHTTP/1.1 200 OK\r\n", 'close-delimited body runs to the end';
    is $r[5]{protocol}, 'HTTP/1.0', 'protocol';
    is $r[5]{reason}, 'Internal Server Error', 'reason';

    my $rest;
    @r = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", rest => \$rest);
    is scalar @r, 0, 'truncated content-length body: no response';
    like $rest, qr/short$/, 'rest gets the incomplete bytes';
    @r = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    is scalar @r, 0, 'truncated chunked body: no response';
    @r = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", head => 1);
    is scalar @r, 2, 'head => 1: content-length does not frame a body';
    @r = parse_response("HTTP/1.1 200 OK\r\n\r\nabc", incomplete_ok => 1);
    is scalar @r, 0, 'incomplete_ok: close-delimited body not complete yet';
    @r = parse_response("garbage\r\n\r\n", rest => \$rest);
    is scalar @r, 0, 'not a status line: nothing';
    is $rest, "garbage\r\n\r\n", 'and it is all rest';
}

# ---- run_bounded
{
    my ($rc, $out) = Test::Portico::run_bounded(5, 'sh', '-c', 'echo out; echo err >&2; exit 3');
    is $rc, 3, 'run_bounded: exit code';
    like $out, qr/out\n.*err/s, 'run_bounded: stdout and stderr';
    my $t0 = time;
    ($rc) = Test::Portico::run_bounded(0.5, 'sleep', '10');
    is $rc, -1, 'run_bounded: timeout gives -1';
    ok time - $t0 < 3, 'run_bounded: timeout is bounded';
}

# ---- a stand-in server: master + 2 workers; answers every request with two
# keep-alive responses, so http(responses => N) must not wait for a close
my $fake = <<'FAKE';
#!/usr/bin/perl
use strict; use warnings; use IO::Socket::INET;
my ($conf) = grep { -f } @ARGV;
open my $fh, '<', $conf or die "no conf\n"; local $/; my $c = <$fh>;
if ($c =~ /BROKEN/) { print STDERR "fake: config error\n"; exit 255 }
my ($port) = $c =~ /listen 127\.0\.0\.1:(\d+)/;
# handlers first: the test signals as soon as the port and the workers exist
my @kids;
$SIG{TERM} = sub { kill 'TERM', @kids; waitpid($_, 0) for @kids; exit 0 };
$SIG{USR2} = sub { exit 3 };    # a master dying without its workers
$SIG{USR1} = sub { open my $f, '>>', 'logs/error.log'; print $f "got USR1\n" } ;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 5, ReuseAddr => 1) or die $!;
for (1..2) { my $p = fork; if (!$p) { $SIG{$_} = 'DEFAULT' for qw(TERM USR1 USR2); sleep 60; exit 0 } push @kids, $p }
chdir $ARGV[1];
while (1) {
    my $c = $l->accept or next;
    my $req = ''; while ($req !~ /\r\n\r\n/) { sysread($c, $req, 4096, length $req) or last }
    next unless length $req;
    open my $log, '>>', 'logs/access.log'; print $log "GET\n"; close $log;
    syswrite $c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    sleep 3 if $req =~ /keep/;
}
FAKE
{
    my $s = Test::Portico->new;
    my $bin = $s->write_file('fake-server', $fake);
    chmod 0755, $bin;
    $s->{bin} = $bin;
    $s->conf("server { listen 127.0.0.1:%%PORT%%; }\n");
    ok $s->start, 'start: stand-in server accepts on the port';
    my $master = $s->master_pid;
    ok pid_alive($master), 'master_pid is alive';
    my $w = $s->wait_workers(2, 5);
    is scalar @{ $w || [] }, 2, 'worker_pids: two children of the master';
    my $t0 = time;
    my $raw = $s->http("GET / HTTP/1.1\r\nHost: keep\r\n\r\n", responses => 2, timeout => 5);
    ok time - $t0 < 2, 'http(responses => 2) returns without waiting for close';
    my @r = parse_response($raw);
    is scalar @r, 2, 'two responses read';
    is $r[1]{body}, 'ok', 'second one chunked';
    like $s->curl('/'), qr/^ok/, 'curl';
    $raw = $s->http(["GET / HT", "TP/1.0\r\n\r\n"], delay => 0.05, timeout => 2);
    like $raw, qr/^HTTP\/1\.1 200/, 'http with split pieces';
    my $r = $s->get('/');
    is $r->{status}, 200, 'get: parsed first response';
    like $s->access_log, qr/GET/, 'access_log reads logs/access.log';
    $s->signal('USR1');
    ok wait_for(3, sub { $s->error_log =~ /got USR1/ }), 'signal USR1 delivered';
    my @workers = @$w;
    is $s->stop, 0, 'stop: TERM, exit code 0';
    ok !pid_alive($master), 'master gone';
    ok !grep({ pid_alive($_) } @workers), "workers gone" or diag join " ", map { `cat /proc/$_/stat 2>/dev/null` } @workers;
    is $s->stop, undef, 'stop again: no-op';

    # a master that dies and leaves its workers: stop cleans them up
    ok $s->start, 'start again';
    @workers = @{ $s->wait_workers(2, 5) || [] };
    $s->signal('USR2');
    ok wait_for(3, sub { !$s->worker_pids }), 'master died';
    is $s->stop, 3, 'stop: exit code of a master that died on its own';
    ok !grep({ pid_alive($_) } @workers), 'its orphaned workers were stopped too';

    $s->conf("BROKEN server { listen 127.0.0.1:%%PORT%%; }\n");
    eval { $s->start(timeout => 3) };
    like $@, qr/exited with status \d+ during start.*config error/s, 'start dies with the log tail when the server exits' or diag $@;
    my ($rc, $out) = $s->test_config("BROKEN\n");
    is $rc, 255, 'test_config: exit code of -t';
    like $out, qr/config error/, 'test_config: output';
}

# ---- the real binary, if built
SKIP: {
    my $bin = Test::Portico::_default_bin();
    skip "no server binary ($bin): run `make` or set PORTICO_BIN", 8 unless -x $bin;
    my $s = Test::Portico->new;
    $s->write_file('html/hello.txt', "hello, portico\n");
    $s->conf(<<'CONF');
    include %%CONF%%/mime.types;
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
    }
CONF
    my ($rc, $out) = $s->test_config;
    is $rc, 0, 'real server: -t accepts the harness config' or diag $out;
    ok eval { $s->start }, 'real server: start' or diag $@;
    my @r = parse_response($s->http_get('/hello.txt'));
    is $r[0]{status}, 200, 'real server: GET static file';
    is $r[0]{body}, "hello, portico\n", 'real server: body';
    like $r[0]{headers}{'content-type'} // '', qr{^text/plain}, 'real server: mime.types';
    ok wait_for(3, sub { $s->access_log =~ m{"GET /hello.txt HTTP/1.0" 200} }), 'real server: access log line';
    ok scalar($s->worker_pids) >= 1, 'real server: has workers';
    is $s->stop, 0, 'real server: stops on TERM with 0';
}

done_testing;

#!/usr/bin/perl
# Malformed and ambiguous requests over raw sockets. Each one must get its
# refusal status, a line in the error log, and a closed connection; and a
# valid request written right behind it, in the same write, must never be
# answered: whatever follows a refused request is not a request (the core of
# request smuggling and desync defences, RFC 9112 §6.3, §11.2).
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Test::Portico qw(parse_response need_bin wait_for);

need_bin();

my $s = Test::Portico->new;
$s->write_file('html/index.html', "index\n");
# t/proxy_client_smuggling.t runs this same table through the HTTP proxy:
# /ok and /second are then answered by an upstream that records every
# request it receives, and at the end it must have seen only the valid ones.
my $VIA_PROXY = $ENV{PORTICO_SMUGGLING_VIA_PROXY};
my ($up, $seen_file);
if ($VIA_PROXY) {
    require Test::Portico::Peers;
    $seen_file = $s->dir . '/upstream-requests';
    $up = Test::Portico::Peers->perl_peer(code => sub {
        my $srv = shift;
        $SIG{CHLD} = 'IGNORE';
        while (my $c = $srv->accept) {
            my $pid = fork // next;
            if ($pid) { close $c; next }
            alarm 30;
            my $buf = '';
            while (1) {
                while ($buf !~ /\r\n\r\n/) { my $n = sysread($c, my $b, 65536); exit 0 unless $n; $buf .= $b }
                my $head = substr($buf, 0, index($buf, "\r\n\r\n") + 4, '');
                my ($line) = $head =~ /^([^\r\n]*)/;
                my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
                while (length($buf) < ($len // 0)) { my $n = sysread($c, my $b, 65536); exit 0 unless $n; $buf .= $b }
                substr($buf, 0, $len // 0, '');
                open my $f, '>>', $seen_file or die;
                print $f "$line\n";
                close $f;
                my $body = $line =~ m{^\S+ /second} ? 'SMUGGLED' : 'ok';
                syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: " . length($body) . "\r\n\r\n$body");
            }
        }
    });
}
my $backend = $VIA_PROXY
    ? 'location = /second { proxy_pass http://' . $up->addr . "; }\n"
      . '        location = /ok { proxy_pass http://' . $up->addr . '; }'
    : "location = /second { return 200 \"SMUGGLED\"; }\n        location = /ok { return 200 \"ok\"; }";
$s->conf(<<"CONF");
    default_type text/plain;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        $backend
    }
CONF
$s->start;

my $H = "Host: localhost\r\n";
my $SECOND = "GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n";
my $long = 'a' x 9000;

# [name, raw request, expected status]
my @cases = (
    # framing ambiguity
    ['CL and TE', "POST /ok HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
    ['TE and CL', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400],
    ['two different CLs', "POST /ok HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400],
    ['duplicate equal CL', "POST /ok HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400],
    ['CL list', "POST /ok HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello", 400],
    ['CL with sign', "POST /ok HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello", 400],
    ['CL not a number', "POST /ok HTTP/1.1\r\n${H}Content-Length: 5x\r\n\r\nhello", 400],
    ['CL overflow', "POST /ok HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n", 400],
    ['TE chunked, gzip', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400],
    ['TE gzip, chunked', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400],
    ['TE chunked, identity', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400],
    ['TE identity', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n0\r\n\r\n", 501],
    ['TE gzip', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 501],
    ['two TE fields', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
    ['TE in HTTP/1.0', "POST /ok HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
    ['TE obs-folded', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400],
    # chunk sizes and extensions
    ['chunk size 0x10', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x10\r\n" . ('z' x 16) . "\r\n0\r\n\r\n", 400],
    ['chunk size -1', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\nz\r\n0\r\n\r\n", 400],
    ['chunk size with a space', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1 \r\nz\r\n0\r\n\r\n", 400],
    ['chunk size 18 hex digits', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n000000000000000001\r\nz\r\n0\r\n\r\n", 400],
    ['chunk size not hex', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nz\r\n0\r\n\r\n", 400],
    ['chunk extension without name', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;=x\r\nz\r\n0\r\n\r\n", 400],
    ['chunk extension with space', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1 ;x=y\r\nz\r\n0\r\n\r\n", 400],
    ['chunk data longer than its size', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\r\nzz\r\n0\r\n\r\n", 400],
    ['chunk size line with bare LF', "POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\nz\r\n0\r\n\r\n", 400],
    # header syntax
    ['obs-fold', "GET /ok HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n", 400],
    ['whitespace before the first field', "GET /ok HTTP/1.1\r\n ${H}\r\n", 400],
    ['bare CR in a value', "GET /ok HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n", 400],
    ['bare LF line ends', "GET /ok HTTP/1.1\n${H}\n", 400],
    ['bare LF in the head', "GET /ok HTTP/1.1\r\n${H}X-A: a\n\r\n", 400],
    ['NUL in a value', "GET /ok HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n", 400],
    ['CTL in a value', "GET /ok HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n", 400],
    ['space before colon', "GET /ok HTTP/1.1\r\nHost : localhost\r\n\r\n", 400],
    ['tab before colon', "GET /ok HTTP/1.1\r\n${H}Content-Length\t: 0\r\n\r\n", 400],
    ['field without colon', "GET /ok HTTP/1.1\r\n${H}NoColon\r\n\r\n", 400],
    ['empty field name', "GET /ok HTTP/1.1\r\n${H}: x\r\n\r\n", 400],
    ['CTL in a field name', "GET /ok HTTP/1.1\r\n${H}X\x01A: x\r\n\r\n", 400],
    # request line
    ['invalid method chars', "G(ET /ok HTTP/1.1\r\n${H}\r\n", 400],
    ['method with NUL', "GE\0T /ok HTTP/1.1\r\n${H}\r\n", 400],
    ['leading space', " GET /ok HTTP/1.1\r\n${H}\r\n", 400],
    ['two spaces', "GET  /ok HTTP/1.1\r\n${H}\r\n", 400],
    ['space in the target', "GET /o k HTTP/1.1\r\n${H}\r\n", 400],
    ['target not a path', "GET ok HTTP/1.1\r\n${H}\r\n", 400],
    ['fragment in the target', "GET /ok#frag HTTP/1.1\r\n${H}\r\n", 400],
    ['CTL in the target', "GET /o\x01k HTTP/1.1\r\n${H}\r\n", 400],
    ['unknown scheme', "GET ftp://localhost/ok HTTP/1.1\r\n${H}\r\n", 400],
    ['asterisk with GET', "GET * HTTP/1.1\r\n${H}\r\n", 400],
    ['encoded NUL', "GET /o%00k HTTP/1.1\r\n${H}\r\n", 400],
    ['bad percent-encoding', "GET /o%zzk HTTP/1.1\r\n${H}\r\n", 400],
    ['path above the root', "GET /../etc/passwd HTTP/1.1\r\n${H}\r\n", 400],
    ['lowercase protocol', "GET /ok http/1.1\r\n${H}\r\n", 400],
    ['HTTP/2.0', "GET /ok HTTP/2.0\r\n${H}\r\n", 505],
    ['HTTP/1.2 (refused, see report)', "GET /ok HTTP/1.2\r\n${H}\r\n", 505],
    ['HTTP/0.9-style line', "GET /ok\r\n${H}\r\n", 400],
    ['CONNECT', "CONNECT localhost:443 HTTP/1.1\r\n${H}\r\n", 405],
    # Host
    ['no Host in 1.1', "GET /ok HTTP/1.1\r\n\r\n", 400],
    ['two Hosts', "GET /ok HTTP/1.1\r\n${H}Host: other\r\n\r\n", 400],
    ['Host with a space', "GET /ok HTTP/1.1\r\nHost: a b\r\n\r\n", 400],
    ['Host with a slash', "GET /ok HTTP/1.1\r\nHost: a/b\r\n\r\n", 400],
    ['Host with a bad port', "GET /ok HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400],
    ['Host with ..', "GET /ok HTTP/1.1\r\nHost: a..b\r\n\r\n", 400],
    ['empty Host in 1.1', "GET /ok HTTP/1.1\r\nHost:\r\n\r\n", 400],
    # limits
    ['header too large', "GET /ok HTTP/1.1\r\n${H}X-Big: $long\r\n\r\n", 431],
    ['too many fields', "GET /ok HTTP/1.1\r\n${H}" . join('', map { "X-$_: v\r\n" } 1 .. 120) . "\r\n", 431],
    ['request line too long', "GET /$long HTTP/1.1\r\n${H}\r\n", 414],
    ['unknown expectation', "POST /ok HTTP/1.1\r\n${H}Expect: 200-ok\r\nContent-Length: 0\r\n\r\n", 417],
);

sub exchange {
    my ($data) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    binmode $c;
    syswrite($c, $data);
    my ($in, $closed) = ('', 0);
    my $sel = IO::Select->new($c);
    my $deadline = time + 5;
    while (time < $deadline) {
        next unless $sel->can_read(0.05);
        my $n = sysread($c, my $buf, 65536);
        if (!$n) { $closed = 1; last }
        $in .= $buf;
    }
    close $c;
    return ($in, $closed);
}

for my $case (@cases) {
    my ($name, $raw, $want) = @$case;
    my $log_before = length $s->error_log;
    my ($in, $closed) = exchange($raw . $SECOND);
    my @status = $in =~ m{HTTP/1\.\d (\d{3})}g;    # anywhere: a body need not end in a newline
    is $status[0], $want, "$name: $want";
    is scalar(@status), 1, "$name: exactly one response, the appended request is not answered"
        or diag explain \@status;
    unlike $in, qr/SMUGGLED/, "$name: nothing from the appended request";
    ok $closed, "$name: connection closed";
    ok wait_for(2, sub { length($s->error_log) > $log_before }), "$name: logged";
}

# the positive control: the same appended request after a valid one IS answered
{
    my ($in, $closed) = exchange("GET /ok HTTP/1.1\r\n${H}\r\n" . "GET /second HTTP/1.1\r\n${H}Connection: close\r\n\r\n");
    my @r = parse_response($in);
    is_deeply [map { "$_->{status} $_->{body}" } @r], ['200 ok', '200 SMUGGLED'], 'control: two valid pipelined requests, two answers';
    ok $closed, 'control: closed after Connection: close';
    ($in) = exchange("POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;a=b;c=\"d\"\r\nz\r\n0\r\nX-Trailer: t\r\n\r\n"
        . "GET /second HTTP/1.1\r\n${H}Connection: close\r\n\r\n");
    @r = parse_response($in);
    is_deeply [map { "$_->{status} $_->{body}" } @r], ['200 ok', '200 SMUGGLED'], 'control: valid chunked body with extensions and trailer, then a request';
}

# a refusal in the middle of a pipeline: what came before is answered, nothing after
{
    my ($in, $closed) = exchange("GET /ok HTTP/1.1\r\n${H}\r\n" . "GET /ok HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n" . $SECOND);
    my @status = $in =~ m{HTTP/1\.\d (\d{3})}g;    # anywhere: a body need not end in a newline
    is "@status", "200 400", "valid, malformed, valid: answered 200 then 400 only" or diag $in;
    ok $closed, '... and closed';
}

if ($VIA_PROXY) {
    # the valid requests of the controls above, and nothing else
    my @seen = -f $seen_file ? do { open my $f, '<', $seen_file or die; <$f> } : ();
    is scalar(@seen), 5, 'the upstream saw exactly the 5 valid requests of the controls, none of the '
        . scalar(@cases) . ' malformed ones or what followed them'
        or diag explain \@seen;
}
$s->stop;
done_testing;

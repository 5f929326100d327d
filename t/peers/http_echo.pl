#!/usr/bin/perl
# http_echo.pl PORT LOGFILE — an HTTP/1.1 upstream for the proxy tests.
# One forked child per connection (keep-alive, bounded by alarm). Every
# request it reads is appended to LOGFILE as "REQ <request line>" so a test
# can count what the upstream saw. The path chooses the answer:
#   /status/N       status N with no body (204/304) or a short one
#   /chunked        a chunked body ("hello chunked\n" in three chunks)
#   /big/N          N bytes of a fixed pattern with Content-Length
#   /bigchunked/N   the same, chunked in 64 KiB pieces
#   /close          a close-delimited body
#   /headers        response fields for hide/pass tests
#   /redirect/X     302 to http://<Host>/X
#   /early          a 103 Early Hints, then 200
#   anything else   200, the request echoed: line, fields, body length + md5
use strict;
use warnings;
use IO::Socket::INET;
use Digest::MD5 qw(md5_hex);
use POSIX qw(WNOHANG);

my ($port, $log) = @ARGV;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 64,
                                ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
$SIG{CHLD} = sub { 1 while waitpid(-1, WNOHANG) > 0 };
alarm 300;
sub pattern { my $n = shift; my $p = join('', map { chr(65 + $_ % 26) } 0 .. 1023); my $s = $p x int($n / 1024 + 1); substr($s, 0, $n) }
while (1) {
    my $c = $srv->accept or next;
    my $pid = fork;
    if (!defined $pid) { close $c; next }
    if ($pid) { close $c; next }
    alarm 60;
    binmode $c;
    my $buf = '';
    REQ: while (1) {
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread($c, my $chunk, 65536);
            exit 0 unless $n;
            $buf .= $chunk;
        }
        my $end = index($buf, "\r\n\r\n");
        my $head = substr($buf, 0, $end);
        substr($buf, 0, $end + 4, '');
        my ($line, @fields) = split /\r\n/, $head;
        my %h;
        for (@fields) { my ($k, $v) = /^([^:]+):\s*(.*)$/ or next; push @{ $h{lc $k} }, $v }
        my $cl = $h{'content-length'} ? $h{'content-length'}[0] : 0;
        while (length $buf < $cl) {
            my $n = sysread($c, my $chunk, 1 << 20);
            exit 0 unless $n;
            $buf .= $chunk;
        }
        my $body = substr($buf, 0, $cl, '');
        if (open my $lf, '>>', $log) { print {$lf} "REQ $line\n"; close $lf }
        my ($method, $target, $proto) = split / /, $line;
        my $close = ($h{connection} && grep { /close/i } @{ $h{connection} }) || $proto eq 'HTTP/1.0';
        my $conn = $close ? "Connection: close\r\n" : '';
        my $out;
        if ($target =~ m{^/status/(\d+)}) {
            my $st = $1;
            $out = "HTTP/1.1 $st X\r\n$conn" . ($st == 204 || $st == 304 ? "\r\n" : "Content-Length: 3\r\n\r\nst\n");
        } elsif ($target =~ m{^/chunked}) {
            $out = "HTTP/1.1 200 OK\r\n${conn}Transfer-Encoding: chunked\r\n\r\n" . ($method eq 'HEAD' ? '' : "6\r\nhello \r\n8\r\nchunked\n\r\n0\r\nX-Trailer: t\r\n\r\n");
        } elsif ($target =~ m{^/big/(\d+)}) {
            my $b = pattern($1);
            $out = "HTTP/1.1 200 OK\r\n${conn}Content-Length: " . length($b) . "\r\n\r\n" . ($method eq 'HEAD' ? '' : $b);
        } elsif ($target =~ m{^/bigchunked/(\d+)}) {
            my $b = pattern($1);
            $out = "HTTP/1.1 200 OK\r\n${conn}Transfer-Encoding: chunked\r\n\r\n";
            while (length $b) { my $p = substr($b, 0, 65536, ''); $out .= sprintf("%x\r\n%s\r\n", length $p, $p) }
            $out .= "0\r\n\r\n";
        } elsif ($target =~ m{^/close}) {
            syswrite($c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited body\n");
            exit 0;
        } elsif ($target =~ m{^/headers}) {
            $out = "HTTP/1.1 200 OK\r\n${conn}X-Secret: s\r\nX-Accel-Redirect: /nope\r\nX-Pad: p\r\nX-Keep: k\r\nConnection: X-Hop\r\nX-Hop: h\r\nKeep-Alive: timeout=5\r\nContent-Length: 3\r\n\r\nhd\n";
        } elsif ($target =~ m{/redirect/(.*)}) {
            my $host = $h{host} ? $h{host}[0] : 'none';
            $out = "HTTP/1.1 302 Found\r\n${conn}Location: http://$host/$1\r\nContent-Length: 0\r\n\r\n";
        } elsif ($target =~ m{^/early}) {
            $out = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n${conn}Content-Length: 3\r\n\r\nok\n";
        } else {
            my $e = "REQUEST $line\n";
            $e .= "H " . lc($_) . ": " . join(' | ', @{ $h{$_} }) . "\n" for sort keys %h;
            $e .= "BODYLEN " . length($body) . "\nBODYMD5 " . md5_hex($body) . "\n";
            $out = "HTTP/1.1 200 OK\r\n${conn}Content-Type: text/plain\r\nContent-Length: " . length($e) . "\r\n\r\n" . ($method eq 'HEAD' ? '' : $e);
        }
        while (length $out) { my $n = syswrite($c, $out); exit 0 unless $n; substr($out, 0, $n, '') }
        exit 0 if $close;
    }
}

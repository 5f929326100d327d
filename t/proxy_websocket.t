#!/usr/bin/perl
# WebSocket through the proxy with nginx's documented recipe
# (proxy_http_version 1.1; Upgrade $http_upgrade; Connection "upgrade"):
# the RFC 6455 handshake reaches the upstream, its 101 comes back, and then
# frames flow both ways through the tunnel until a side closes; an idle
# tunnel is closed at proxy_read_timeout; a 101 the client did not ask for
# is refused.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Digest::SHA qw(sha1_base64);
use Test::Portico qw(need_bin);
use Test::Portico::Peers;

need_bin();
my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

# an upstream that speaks just enough WebSocket: handshake, then echo of
# text frames (unmasked back), "/rogue" answers 101 without being asked
my $up = Test::Portico::Peers->perl_peer(code => sub {
    my $srv = shift;
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $srv->accept) {
        my $pid = fork // next;
        if ($pid) { close $c; next }
        alarm 20;
        my $buf = '';
        while ($buf !~ /\r\n\r\n/) { my $n = sysread($c, my $b, 65536); exit 0 unless $n; $buf .= $b }
        my ($target) = $buf =~ /^\S+ (\S+)/;
        if ($target eq '/rogue') {
            syswrite($c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: something\r\nConnection: upgrade\r\n\r\n");
            sleep 1;
            exit 0;
        }
        my ($key) = $buf =~ /^Sec-WebSocket-Key:\s*(\S+)/mi;
        my ($upg) = $buf =~ /^Upgrade:\s*(\S+)/mi;
        unless ($key && $upg && lc $upg eq 'websocket') {
            syswrite($c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            exit 0;
        }
        my $accept = sha1_base64($key . $GUID) . '=';
        syswrite($c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   . "Connection: Upgrade\r\nSec-WebSocket-Accept: $accept\r\n\r\n");
        $buf = substr($buf, index($buf, "\r\n\r\n") + 4);
        while (1) {
            while (length($buf) >= 2) {
                my ($b0, $b1) = unpack('CC', $buf);
                my $len = $b1 & 0x7f;
                my $off = 2;
                if ($len == 126) { last if length($buf) < 4; $len = unpack('n', substr($buf, 2, 2)); $off = 4 }
                my $masked = $b1 & 0x80;
                my $need = $off + ($masked ? 4 : 0) + $len;
                last if length($buf) < $need;
                my $mask = $masked ? substr($buf, $off, 4) : "\0\0\0\0";
                my $data = substr($buf, $off + ($masked ? 4 : 0), $len);
                $data ^= substr($mask x (int($len / 4) + 1), 0, $len);
                substr($buf, 0, $need, '');
                exit 0 if ($b0 & 0x0f) == 8; # close
                my $reply = "echo:$data";
                my $l = length $reply;
                syswrite($c, pack('CC', 0x81, $l) . $reply) if $l < 126;
                syswrite($c, pack('CCn', 0x81, 126, $l) . $reply) if $l >= 126;
            }
            my $n = sysread($c, my $b, 65536);
            exit 0 unless $n;
            $buf .= $b;
        }
    }
});
my $U = $up->addr;

my $s = Test::Portico->new;
$s->conf(<<"CONF");
    server {
        listen 127.0.0.1:%%PORT%%;
        location /ws {
            proxy_pass http://$U;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 2s;
        }
        location /rogue {
            proxy_pass http://$U;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /plain { return 200 "plain\n"; }
    }
CONF
$s->start;

sub frame {    # a masked client text frame
    my $data = shift;
    my $mask = pack('N', int(rand(2**32)));
    my $l = length $data;
    my $hdr = $l < 126 ? pack('CC', 0x81, 0x80 | $l) : pack('CCn', 0x81, 0x80 | 126, $l);
    return $hdr . $mask . ($data ^ substr($mask x (int($l / 4) + 1), 0, $l));
}

sub read_until {    # bounded read until the regex matches
    my ($sock, $re, $secs) = @_;
    my $sel = IO::Select->new($sock);
    my $buf = '';
    my $deadline = time + $secs;
    while ($buf !~ $re && time < $deadline) {
        last unless $sel->can_read(0.5) || time < $deadline;
        next unless $sel->can_read(0);
        my $n = sysread($sock, my $b, 65536);
        last unless $n;
        $buf .= $b;
    }
    return $buf;
}

my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:" . $s->port, Timeout => 5) or die;
my $key = 'dGhlIHNhbXBsZSBub25jZQ==';
print $c "GET /ws/chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n\r\n";
my $head = read_until($c, qr/\r\n\r\n/, 5);
like $head, qr{^HTTP/1.1 101 }, '101 Switching Protocols reaches the client';
like $head, qr/^Upgrade: websocket\r$/mi, 'Upgrade: websocket';
like $head, qr/^Connection: upgrade\r$/mi, 'Connection: upgrade';
my $want = sha1_base64($key . $GUID) . '=';
like $head, qr/^Sec-WebSocket-Accept: \Q$want\E\r$/mi, 'the upstream handshake answer passes';

for my $msg ('hello', 'x' x 300, 'last one') {
    print $c frame($msg);
    my $got = read_until($c, qr/echo:\Q$msg\E/, 5);
    like $got, qr/echo:\Q$msg\E/, 'frame of ' . length($msg) . ' bytes echoed through the tunnel';
}
# idle: the tunnel is closed at proxy_read_timeout (2 s), bounded wait
my $sel = IO::Select->new($c);
my $closed = 0;
my $deadline = time + 8;
while (time < $deadline) {
    next unless $sel->can_read(0.5);
    my $n = sysread($c, my $b, 1024);
    if (!$n) { $closed = 1; last }
}
ok $closed, 'an idle tunnel is closed at proxy_read_timeout';
close $c;

# a 101 to a protocol the client did not ask for is refused
my $r = $s->get('/rogue', Upgrade => 'websocket', Connection => 'Upgrade');
is $r->{status}, 502, "unrequested protocol switch: 502" or diag explain $r;
like $s->error_log, qr/101 Switching Protocols to a protocol the client did not ask for/, 'logged';
is $s->get('/plain')->{body}, "plain\n", 'the server still answers';
like $s->access_log, qr{"GET /ws/chat HTTP/1.1" 101 }, 'the upgrade is in the access log';

done_testing;

#!/usr/bin/perl
# events { multi_accept on|off } (nginx's directive): off, the default, takes
# one connection per readiness report of a listening socket, on takes them
# until the backlog is empty. Both must serve a burst of connections that
# queue in the backlog while the worker is busy, next to a keep-alive
# connection already established; a bad value is refused as nginx does.
# The listen backlog survives into the worker (no re-listen() with 128).
# Also the local address of accepted connections: taken from a specific
# listen address without asking the kernel, from getsockname() on a
# wildcard one ($server_addr, $server_port).
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::Portico qw(need_bin parse_response);

need_bin();

my $TCK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub cpu_secs {    # utime + stime of a process, in seconds
    open my $fh, '<', "/proc/$_[0]/stat" or return 0;
    my ($rest) = (<$fh> // '') =~ /\)\s(.*)$/s or return 0;
    my @f = split ' ', $rest;
    return ($f[11] + $f[12]) / $TCK;
}

my $HTTP = <<'CONF';
    server {
        listen 127.0.0.1:%%PORT%%;
        listen 0.0.0.0:%%PORT2%%;
        location = /addr { return 200 "$server_addr:$server_port\n"; }
        location = /peer { return 200 "$remote_addr\n"; }
        location / { return 200 "ok\n"; }
    }
CONF

# opens $n connections at once (the handshakes complete in the kernel's
# backlog), then sends a request on each and reads every response
sub burst {
    my ($port, $n) = @_;
    my @s;
    for (1 .. $n) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5)
            or return "connect: $!";
        push @s, $c;
    }
    syswrite $_, "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" for @s;
    my $ok = 0;
    my $deadline = time + 10;
    my %buf;
    my $sel = IO::Select->new(@s);
    while ($sel->count && time < $deadline) {
        for my $c ($sel->can_read(1)) {
            my $r = sysread $c, $buf{$c}, 4096, length($buf{$c} // '');
            next if $r;
            $sel->remove($c);
            my ($resp) = parse_response($buf{$c} // '');
            $ok++ if $resp && $resp->{status} == 200 && $resp->{body} eq "ok\n";
            close $c;
        }
    }
    return $ok;
}

for my $mode ('', 'off', 'on') {
    my $name = $mode eq '' ? 'default' : "multi_accept $mode";
    my $s = Test::Portico->new(events => $mode eq '' ? '' : "multi_accept $mode;");
    $s->conf($HTTP);
    my ($rc, $out) = $s->command('-t');
    is $rc, 0, "$name: -t accepts it" or diag $out;
    $s->start;

    # an established keep-alive connection keeps being served around the burst
    my $ka = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Timeout => 5)
        or die "connect: $!";
    my $ka_get = sub {
        syswrite $ka, "GET /ka HTTP/1.1\r\nHost: x\r\n\r\n";
        my $in = '';
        my $sel = IO::Select->new($ka);
        my $deadline = time + 5;
        while (time < $deadline && $sel->can_read(1)) {
            sysread($ka, $in, 4096, length $in) or last;
            last if $in =~ /\r\n\r\nok\n\z/;
        }
        return $in =~ m{\AHTTP/1\.1 200 } && $in =~ /\r\n\r\nok\n\z/;
    };
    ok $ka_get->(), "$name: keep-alive request before the burst";
    is burst($s->port, 64), 64, "$name: a burst of 64 connections is served";
    ok $ka_get->(), "$name: keep-alive request after the burst";
    is burst($s->port2, 64), 64, "$name: and on the wildcard listener";

    is $s->get('/addr')->{body}, "127.0.0.1:" . $s->port . "\n",
        "$name: \$server_addr:\$server_port of a specific listen address";
    my ($r) = parse_response($s->http("GET /addr HTTP/1.0\r\n\r\n", port => $s->port2));
    is $r->{body}, "127.0.0.1:" . $s->port2 . "\n",
        "$name: \$server_addr:\$server_port of a wildcard listen address (getsockname)";
    # the client address is formatted by hand for IPv4: one- to three-digit octets
    for my $from ('127.0.0.1', '127.10.200.3', '127.255.0.99') {
        my $c = IO::Socket::INET->new(LocalAddr => $from, PeerAddr => '127.0.0.1', PeerPort => $s->port, Timeout => 5)
            or do { fail "$name: connect from $from: $!"; next };
        print $c "GET /peer HTTP/1.0\r\n\r\n";
        local $/;
        my $resp = <$c> // '';
        like $resp, qr/\r\n\r\n\Q$from\E\n\z/, "$name: \$remote_addr of a client at $from";
    }
    $s->stop;
    unlike $s->error_log, qr/\[(alert|emerg|crit)\]/, "$name: no alert logged";
}

# The listen backlog is the configured one (511 by default, as nginx): the
# worker's accept event must not re-listen() the socket with a smaller one
# (libevent's evconnlistener did: 128). With the worker stopped, 300
# connections complete their handshake in the kernel's accept queue; past a
# full queue the kernel drops the SYN and connect() times out.
{
    my $s = Test::Portico->new;
    $s->conf($HTTP);
    $s->start;
    ok $s->wait_workers(1), 'backlog: one worker';
    my ($w) = $s->worker_pids;
    kill 'STOP', $w;
    my @c;
    for (1 .. 300) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Timeout => 1)
            or last;
        push @c, $c;
    }
    kill 'CONT', $w;
    is scalar(@c), 300, 'backlog: 300 connections queue while the worker does not accept';
    syswrite $c[-1], "GET /b HTTP/1.0\r\n\r\n" if @c;
    my $in = '';
    if (@c && IO::Select->new($c[-1])->can_read(10)) { 1 while sysread $c[-1], $in, 4096, length $in }
    like $in, qr{\AHTTP/1\.1 200 }, 'backlog: the last one is served once the worker runs';
    close $_ for @c;
    $s->stop;
}

# A draining worker (QUIT) lets go of its listening sockets; while the
# master still holds them, a connection queued there must not wake the
# worker's loop over and over (the epoll registration has to go before the
# close(): with the changelist it goes at the next loop pass).
{
    my $s = Test::Portico->new;
    $s->conf($HTTP);
    $s->start;
    ok $s->wait_workers(1), 'drain: one worker';
    my ($w) = $s->worker_pids;
    # a request in progress keeps the worker draining
    my $held = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Timeout => 5)
        or die "connect: $!";
    syswrite $held, "GET /held HTTP/1.1\r\nHost: x\r\n";
    sleep 0.3;
    kill 'QUIT', $w;
    sleep 0.3;
    my $queued = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Timeout => 2);
    my $cpu0 = cpu_secs($w);
    sleep 1.5;
    my $cpu = cpu_secs($w) - $cpu0;
    ok $cpu < 0.5, sprintf('drain: no busy loop on a queued connection (%.2f s CPU in 1.5 s)', $cpu);
    syswrite $held, "\r\n";
    my $in = '';
    if (IO::Select->new($held)->can_read(5)) { 1 while sysread $held, $in, 4096, length $in }
    like $in, qr{\AHTTP/1\.1 200 .*Connection: close}s, 'drain: the request in progress is answered';
    $s->stop;
}

{
    my $s = Test::Portico->new(events => 'multi_accept maybe;');
    $s->conf($HTTP);
    my ($rc, $out) = $s->command('-t');
    isnt $rc, 0, 'multi_accept maybe: refused';
    like $out, qr/invalid value "maybe" in "multi_accept" directive, it must be "on" or "off"/,
        'multi_accept maybe: nginx\'s message';
}

done_testing;

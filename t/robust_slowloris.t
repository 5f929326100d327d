#!/usr/bin/perl
# Issue 8, slowloris: hundreds of connections trickle a request head one byte
# at a time (a forked attacker, select-driven, reconnecting whatever is
# closed) while a normal client keeps asking for a small file, one new
# connection per request.
#
# Asserted (robust on a loaded machine): the normal client gets every answer
# while under attack; the slow connections are closed by the server at
# client_header_timeout (2 s here: none before it, nearly all within a
# generous grace after it), although each keeps sending; the server answers
# afterwards and no worker died.
# Reported only (diag): the normal client's throughput alone and under
# attack (medians of 1 s samples) and their ratio (issue 8 asks >= 80 %; on
# a 2-core machine the Perl attacker competes for the CPU, so it is a figure,
# not an assertion).
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin wait_for pid_alive);

need_bin();

my $fd_limit = `sh -c 'ulimit -n'` + 0 || 1024;
my $N = $fd_limit - 100 < 800 ? $fd_limit - 100 : 800;
plan skip_all => "ulimit -n $fd_limit leaves room for $N slow connections (< 200)" if $N < 200;

my $TIMEOUT = 2;          # client_header_timeout
my $GRACE = 4;            # a slow connection still open TIMEOUT + GRACE after connect is a failure
my $ATTACK = 8;           # seconds the attacker runs

my $s = Test::Portico->new;
$s->write_file('html/a.txt', "small file\n");
$s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        client_header_timeout 2s;
        root %%ROOT%%/html;
    }
CONF
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };
ok $worker, 'one worker running';

# One request on a new connection: true when the 200 and the body came back.
my $first_error;
sub one_get {
    my $raw = eval { $s->http("GET /a.txt HTTP/1.0\r\nHost: localhost\r\n\r\n", timeout => 5) };
    if (!defined $raw) { $first_error //= $@; return 0 }
    my ($r) = parse_response($raw);
    return $r && $r->{status} == 200 && $r->{body} eq "small file\n";
}

# Sequential requests for $secs seconds: (ok count, failed count, max latency)
sub run_client {
    my ($secs) = @_;
    my ($ok, $bad, $max) = (0, 0, 0);
    my $end = time + $secs;
    while (time < $end) {
        my $t0 = time;
        one_get() ? $ok++ : $bad++;
        my $dt = time - $t0;
        $max = $dt if $dt > $max;
    }
    return ($ok, $bad, $max);
}

sub median { my @v = sort { $a <=> $b } @_; return $v[ int(@v / 2) ] }

# ---------------------------------------------------------------- alone
run_client(0.3);    # warm up
my @alone = map { (run_client(1))[0] } 1 .. 3;
my $alone = median(@alone);
diag "normal client alone: @alone req/s (median $alone)";
ok $alone > 0, 'normal client served alone';

# ---------------------------------------------------------------- attacker
my $ready = $s->dir . '/attacker.ready';
my $results = $s->dir . '/attacker.results';
my $port = $s->port;

# Keeps $N connections trickling one byte per connection every 250 ms for
# $ATTACK seconds; a connection the server closes is replaced. Writes one
# line per connection: "age_at_close got_bytes" (age_at_close = -age when
# it was still open at the end).
sub attacker {
    $SIG{PIPE} = 'IGNORE';
    my $head = "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: " . ('s' x 100000);
    my (%c, @done);
    my $sel = IO::Select->new;
    my $open = sub {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 3)
            or return;
        $sock->blocking(0);
        $c{ fileno $sock } = { sock => $sock, t0 => time, pos => 0, got => 0 };
        $sel->add($sock);
    };
    my $close = sub {
        my ($fd, $now) = @_;
        my $x = delete $c{$fd} or return;
        push @done, sprintf("%.3f %d", $now - $x->{t0}, $x->{got});
        $sel->remove($x->{sock});
        close $x->{sock};
    };
    $open->() for 1 .. $N;
    { open my $fh, '>', $ready; print {$fh} scalar(keys %c), "\n" }
    my $end = time + $ATTACK;
    my $next_tick = time;
    while ((my $now = time) < $end) {
        if ($now >= $next_tick) {
            for my $fd (keys %c) {
                my $x = $c{$fd};
                my $w = syswrite($x->{sock}, substr($head, $x->{pos} % length($head), 1));
                if (defined $w) { $x->{pos} += $w }
                elsif (!$!{EAGAIN}) { $close->($fd, $now) }
            }
            $next_tick = $now + 0.25;
            $open->() for 1 .. ($N - keys %c);    # replace the closed ones
        }
        for my $sock ($sel->can_read(0.05)) {
            my $fd = fileno $sock;
            my $n = sysread($sock, my $buf, 4096);
            if ($n) { $c{$fd}{got} += $n if $c{$fd}; next }
            next if !defined $n && $!{EAGAIN};
            $close->($fd, time);
        }
    }
    my $now = time;
    push @done, sprintf("%.3f %d", -($now - $_->{t0}), $_->{got}) for values %c;
    open my $fh, '>', $results or POSIX::_exit(1);
    print {$fh} "$_\n" for @done;
    close $fh;
    POSIX::_exit(0);
}

my $apid = fork // die "fork: $!";
attacker() if $apid == 0;
my $started = wait_for(15, sub { -s $ready });
my $opened = $started ? $s->read_file($ready) + 0 : 0;
ok $opened >= $N * 0.9, "attacker holds $opened of $N slow connections";

# ---------------------------------------------------------------- during
my @during;
my ($dbad, $dmax) = (0, 0);
for (1 .. 5) {
    my ($ok, $bad, $max) = run_client(1);
    push @during, $ok;
    $dbad += $bad;
    $dmax = $max if $max > $dmax;
}
my $during = median(@during);
is $dbad, 0, 'normal client got every answer during the attack (' . (sum(@during)) . ' requests)';
diag "first client error: $first_error" if $first_error;
diag sprintf "normal client during attack: @during req/s (median %d), slowest request %.3f s", $during, $dmax;
diag sprintf "throughput ratio during/alone: %.2f (issue 8 goal >= 0.80; reported, not asserted)",
    $alone ? $during / $alone : 0;

sub sum { my $t = 0; $t += $_ for @_; $t }

# ---------------------------------------------------------------- slow ones closed
my $gone = wait_for($ATTACK + 15, sub { waitpid($apid, WNOHANG) == $apid });
ok $gone, 'attacker finished in time' or do { kill 'KILL', $apid; waitpid $apid, 0 };
my @res = map { [ split ' ' ] } split /\n/, ($s->read_file($results) // '');
my @closed = sort { $a <=> $b } map { $_->[0] } grep { $_->[0] >= 0 } @res;
my @still = grep { -$_->[0] > $TIMEOUT + $GRACE } grep { $_->[0] < 0 } @res;
# timers run from the loop's cached time: a long loop iteration may fire a little early
my @early = grep { $_ < $TIMEOUT * 0.75 } @closed;
my @late = grep { $_ > $TIMEOUT + $GRACE } @closed;
my $with_bytes = grep { $_->[0] >= 0 && $_->[1] > 0 } @res;
diag sprintf "slow connections: %d closed by the server (lifetime min %.2f median %.2f max %.2f s), "
    . "%d answered with bytes before the close, %d still open at the end",
    scalar(@closed), @closed ? ($closed[0], median(@closed), $closed[-1]) : (0, 0, 0), $with_bytes,
    scalar(grep { $_->[0] < 0 } @res);
ok @closed >= $N, "at least the first wave ($N) was closed by the server";
is scalar(@early), 0, "none closed before client_header_timeout (${TIMEOUT}s)";
ok @late + @still <= 0.02 * @closed,
    sprintf('closed at client_header_timeout: %d late (> %ds), %d never closed', scalar(@late), $TIMEOUT + $GRACE, scalar(@still));
my @lines = $s->error_log =~ /while reading client request headers/g;
diag scalar(@lines) . ' "timed out while reading client request headers" lines logged';

# ---------------------------------------------------------------- after
ok one_get(), 'normal request answered after the attack';
ok pid_alive($worker), 'the same worker is alive';
unlike $s->error_log, qr/exited on signal|\[emerg\]/, 'no worker crash in the error log';
$s->stop;
done_testing;

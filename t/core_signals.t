#!/usr/bin/perl
# Issue 2, acceptance 5 and the command line: USR1 reopens renamed logs; a
# worker killed with SIGKILL is logged and replaced; QUIT lets an in-flight
# response finish and refuses new connections meanwhile; TERM stops fast;
# -s stop|quit|reopen through the pid file; -t, -T, -p, -c, -g, -e, -h.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin pid_alive wait_for);
*run_bounded = \&Test::Portico::run_bounded;

my $bin = need_bin();

my $HTTP = <<'CONF';
    default_type text/plain;
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        location = / { return 200 "hello"; }
    }
CONF

# ---------------------------------------------------------------- USR1

# Rotation the logrotate way: rename, signal, and the new lines go to new
# files. Run once as we are, and (when root) once with `user nobody` whose
# workers cannot create files in the root-owned logs directory themselves.
my @users = ('');
push @users, 'nobody' if $> == 0 && getpwnam('nobody');
for my $user (@users) {
    my $who = $user ? "user $user" : 'same user';
    my $s = Test::Portico->new(worker_processes => 2, main => $user ? "user $user;" : '');
    $s->conf($HTTP);
    $s->start;
    ok $s->wait_workers(2), "USR1 ($who): two workers";
    is $s->get('/before')->{status}, 404, "USR1 ($who): request before rotation";
    my $dir = $s->dir;
    rename "$dir/logs/access.log", "$dir/logs/access.log.1" or die "rename: $!";
    rename "$dir/logs/error.log",  "$dir/logs/error.log.1"  or die "rename: $!";
    if ($user) {
        $s->signal('USR1');
    } else {
        my ($rc, $out) = $s->command('-s', 'reopen');
        is $rc, 0, "-s reopen exits 0" or diag $out;
    }
    # both workers say so in the new error log once they have reopened
    ok wait_for(5, sub { my @n = $s->error_log =~ /\[notice\] \d+#0: reopening logs/g; @n >= 2 }),
        "USR1 ($who): workers log to the new error.log";
    is $s->get('/after')->{status}, 404, "USR1 ($who): request after rotation";
    ok wait_for(3, sub { $s->access_log =~ m{"GET /after HTTP/1\.0" 404} }),
        "USR1 ($who): the new request is in the new access.log";
    unlike $s->access_log, qr{/before}, "USR1 ($who): the old request is not in the new file";
    my $old = $s->read_file('logs/access.log.1') // '';
    like $old, qr{"GET /before HTTP/1\.0" 404}, "USR1 ($who): the renamed file has the old request";
    unlike $old, qr{/after}, "USR1 ($who): and not the new one";
    like $s->read_file('logs/error.log.1') // '', qr/portico started/, "USR1 ($who): old error log kept its lines";
    unlike $s->error_log, qr/\[(alert|emerg)\]/, "USR1 ($who): no reopen failure logged";
    if ($user) {
        my $uid = (getpwnam($user))[2];
        is((stat "$dir/logs/access.log")[4], $uid, "USR1 ($who): new access.log belongs to the workers' user");
        is((stat "$dir/logs/error.log")[4], $uid, "USR1 ($who): new error.log belongs to the workers' user");
    }
    is $s->stop, 0, "USR1 ($who): master exits 0";
}

# ---------------------------------------------------------------- a crashed worker

{
    my $s = Test::Portico->new(worker_processes => 2);
    $s->conf($HTTP);
    $s->start;
    my $w = $s->wait_workers(2);
    ok $w, 'KILL: two workers';
    my $victim = $w->[0];
    # our own server's worker, seen as a child of the master we started
    kill 'KILL', $victim;
    ok wait_for(5, sub { $s->error_log =~ /worker process $victim exited on signal 9/ }),
        'the master logs "exited on signal 9"';
    my $now = $s->wait_workers(2, 5);
    ok $now && !grep({ $_ == $victim } @$now), 'a new worker replaced it' or diag explain $now;
    like $s->error_log, qr/start worker process \d+/, 'the replacement is logged';
    my $ok = 0;
    for (1 .. 20) { $ok++ if ($s->get('/')->{body} // '') eq 'hello' }
    is $ok, 20, 'the server keeps answering (20 of 20)';

    # the same again: replacement is not a one-off
    my $second = $now->[1];
    kill 'KILL', $second;
    ok wait_for(5, sub { $s->error_log =~ /worker process $second exited on signal 9/ }), 'a second kill is logged';
    my $again = $s->wait_workers(2, 5);
    ok $again && !grep({ $_ == $second } @$again), 'and replaced';
    is $s->get('/')->{body}, 'hello', 'still answering';
    is $s->stop, 0, 'master exits 0';
}

# ---------------------------------------------------------------- QUIT and TERM with a response in flight

# A 32 MB file read slowly: far more than loopback socket buffers hold, so
# the response is still being written when the signal arrives.
my $BIG = 32 * 1024 * 1024;

sub start_slow_download {
    my ($s) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port, Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    binmode $c;
    syswrite $c, "GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my ($head, $got) = ('', 0);
    my $sel = IO::Select->new($c);
    my $deadline = time + 5;
    # read the head and the first 64 KB, then stop reading
    while (time < $deadline && $got < 65536) {
        last unless $sel->can_read(1);
        my $n = sysread($c, my $buf, 65536) or last;
        if (length $head == 0 || $head !~ /\r\n\r\n/) {
            $head .= $buf;
            if ($head =~ /\r\n\r\n/) { $got = length($head) - (index($head, "\r\n\r\n") + 4) }
        } else {
            $got += $n;
        }
    }
    my ($len) = $head =~ /Content-Length: (\d+)/i;
    return { sock => $c, got => $got, len => $len // -1, head => $head };
}

# reads the rest (bounded); returns the body bytes received in total
sub finish_download {
    my ($d, $timeout) = @_;
    my $sel = IO::Select->new($d->{sock});
    my $deadline = time + $timeout;
    while (time < $deadline && $d->{got} < $d->{len}) {
        next unless $sel->can_read(0.5);
        my $n = sysread($d->{sock}, my $buf, 1 << 20);
        last unless $n;
        $d->{got} += $n;
    }
    close $d->{sock};
    return $d->{got};
}

# true if a connect is refused outright: a socket still listening would take
# the connection into its backlog where no worker accepts it any more
sub refused {
    my ($port) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 2);
    return 1 unless $c;
    close $c;
    return 0;
}

{
    my $s = Test::Portico->new(worker_processes => 1);
    $s->write_file('html/big.bin', 'x' x $BIG);
    $s->conf($HTTP);
    $s->start;
    my $d = start_slow_download($s);
    is $d->{len}, $BIG, 'QUIT: a 32 MB download started';
    my $master = $s->master_pid;
    $s->signal('QUIT');
    ok wait_for(5, sub { $s->error_log =~ /gracefully shutting down/ }), 'QUIT: logged';
    sleep 0.5;
    ok pid_alive($master), 'QUIT: the master waits for the in-flight response';
    ok refused($s->port), 'QUIT: new connections are refused meanwhile';
    is finish_download($d, 30), $BIG, 'QUIT: the in-flight download completes (all 32 MB)';
    ok wait_for(10, sub { !pid_alive($master) }), 'QUIT: then the master exits';
    is $s->stop, 0, 'QUIT: exit code 0';
    like $s->error_log, qr/\[notice\] \d+#0: exit$/m, 'QUIT: "exit" logged';
    ok !-e $s->dir . '/logs/portico.pid', 'QUIT: pid file removed';
}

{
    my $s = Test::Portico->new(worker_processes => 1);
    $s->write_file('html/big.bin', 'x' x $BIG);
    $s->conf($HTTP);
    $s->start;
    my $d = start_slow_download($s);
    is $d->{len}, $BIG, 'TERM: a 32 MB download started';
    my $master = $s->master_pid;
    my $t0 = time;
    $s->signal('TERM');
    ok wait_for(5, sub { !pid_alive($master) }), 'TERM: the master exits without waiting for the download';
    my $got = finish_download($d, 10);
    cmp_ok $got, '<', $BIG, "TERM: the download was cut ($got of $BIG bytes)";
    is $s->stop, 0, 'TERM: exit code 0';
    like $s->error_log, qr/signal 15 received, exiting/, 'TERM: logged';
}

# ---------------------------------------------------------------- -s stop / -s quit

for my $sig (qw(stop quit)) {
    my $s = Test::Portico->new(worker_processes => 2);
    $s->conf($HTTP);
    $s->start;
    ok $s->wait_workers(2), "-s $sig: running";
    my $master = $s->master_pid;
    my ($rc, $out) = $s->command('-s', $sig);
    is $rc, 0, "-s $sig exits 0" or diag $out;
    ok wait_for(10, sub { !pid_alive($master) }), "-s $sig: the master is gone";
    is $s->stop, 0, "-s $sig: its exit code is 0";
    like $s->error_log, $sig eq 'stop' ? qr/signal 15 received/ : qr/gracefully shutting down/,
        "-s $sig: the master logged the signal";
    ok !-e $s->dir . '/logs/portico.pid', "-s $sig: pid file removed";

    # with no server running, the pid file is missing: a clear error
    my ($rc2, $out2) = $s->command('-s', $sig);
    is $rc2, 1, "-s $sig without a running server: exit 1";
    like $out2, qr/portico\.pid/, '... naming the pid file';
}

{
    my $s = Test::Portico->new;
    $s->conf($HTTP);
    my ($rc, $out) = $s->command('-s', 'bogus');
    is $rc, 1, '-s bogus: exit 1';
    like $out, qr/invalid option: "-s bogus"/, '-s bogus: message';
}

# ---------------------------------------------------------------- -t -T -p -c -g -e -h

{
    my $s = Test::Portico->new;
    my $dir = $s->dir;
    my $file = $s->conf_file;
    $s->write_file('conf/extra.conf', $s->subst("# included\n    server { listen 127.0.0.1:%%PORT2%%; }\n"));
    $s->conf($HTTP . "    include extra.conf;\n");
    my ($rc, $out) = $s->command('-t');
    is $rc, 0, '-t on a good config: exit 0';
    like $out, qr/the configuration file \Q$file\E syntax is ok/, '-t: syntax is ok';
    like $out, qr/configuration file \Q$file\E test is successful/, '-t: test is successful';

    ($rc, $out) = $s->command('-T');
    is $rc, 0, '-T: exit 0';
    like $out, qr/syntax is ok/, '-T: tests too';
    like $out, qr/^# configuration file \Q$file\E:\n# generated by Test::Portico/m, '-T: dumps the main file';
    like $out, qr/^# configuration file \Q$dir\E\/conf\/extra\.conf:\n# included/m, '-T: and the included one';

    # -p and a relative -c: the file is taken from the prefix
    ($rc, $out) = run_bounded(10, $bin, '-p', $dir, '-c', 'conf/portico.conf', '-t');
    is $rc, 0, '-p DIR -c relative: exit 0' or diag $out;
    like $out, qr/the configuration file \Q$dir\E\/conf\/portico\.conf syntax is ok/, '-c relative to -p';
    ($rc, $out) = run_bounded(10, $bin, "-p$dir", '-cconf/nothing.conf', '-t');
    is $rc, 1, 'joined -pDIR -cFILE forms: a missing file fails';
    like $out, qr/open\(\) "\Q$dir\E\/conf\/nothing\.conf" failed.*\n.*configuration file \Q$dir\E\/conf\/nothing\.conf test failed/,
        '... naming the resolved path';

    ($rc, $out) = run_bounded(10, $bin, '-h');
    is $rc, 0, '-h: exit 0';
    like $out, qr/Usage: portico .*-s signal.*-g directives/s, '-h: usage';
}

{
    # -g: worker_processes from the command line (not in the file)
    my $s = Test::Portico->new;
    my $conf = $s->conf($HTTP);
    my $text = $s->read_file($conf);
    $text =~ s/^worker_processes .*\n//m or die 'no worker_processes line';
    $s->write_file('conf/portico.conf', $text);
    $s->start(args => [ '-g', 'worker_processes 3;' ]);
    ok $s->wait_workers(3), '-g "worker_processes 3;": three workers';
    is $s->get('/')->{body}, 'hello', '-g: serving';
    $s->stop;

    # a -g directive that is in the file as well is a duplicate (nginx)
    my ($rc, $out) = $s->command('-g', 'pid logs/other.pid;', '-t');
    is $rc, 1, '-g duplicate of a file directive: refused';
    like $out, qr/"pid" directive is duplicate/, '... as a duplicate';
}

{
    # -e: the error log named on the command line wins over error_log
    my $s = Test::Portico->new;
    my $dir = $s->dir;
    $s->conf($HTTP);
    $s->start(args => [ '-e', "$dir/logs/cmdline_error.log" ]);
    ok wait_for(5, sub { ($s->read_file('logs/cmdline_error.log') // '') =~ /portico started/ }),
        '-e: the master logs to the -e file';
    $s->get('/');
    is $s->stop, 0, '-e: master exits 0';
    like $s->read_file('logs/cmdline_error.log') // '', qr/\[notice\] \d+#0: exit$/m, '-e: through to the end';
    is $s->error_log, '', '-e: the configured error_log stays empty';
}

done_testing;

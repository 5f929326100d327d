#!/usr/bin/perl
# ssl_session_cache shared:NAME:SIZE end to end with openssl s_client
# (-sess_out / -sess_in, tickets off so only the server's cache can resume):
# with two workers a session resumes whichever worker accepts (each worker
# in turn is stopped while every session is resumed), TLS 1.2 session IDs
# and TLS 1.3 stateful tickets; the control: OpenSSL's per-worker "builtin"
# cache does not resume on the other worker; a full small zone gives its
# oldest session up; ssl_session_timeout expires them; a reload keeps the
# zone and its sessions; the directive's errors.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin wait_for);
use Test::Portico::Peers qw(need_tool);
use Time::HiRes qw(sleep);

need_bin();
my $OPENSSL = need_tool('TLS tests drive openssl s_client', 'openssl');

my $s = Test::Portico->new(worker_processes => 2);
my $dir = $s->dir;
mkdir "$dir/certs" or die "mkdir certs: $!";
my ($rc, $out) = Test::Portico::run_bounded(60, $OPENSSL, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', "$dir/certs/a.key", '-out', "$dir/certs/a.crt", '-subj', '/CN=a.test', '-days', '2');
die "openssl req failed ($rc):\n$out" if $rc != 0;

# One GET over s_client on $port ($proto: -tls1_2 | -tls1_3), saving the
# session to $o{out} or offering the one in $o{in}: { reused, pid, body }.
sub fetch {
    my ($port, $proto, %o) = @_;
    my @a = ($OPENSSL, 's_client', '-connect', "127.0.0.1:$port", '-servername', 'a.test', $proto,
        '-ign_eof');
    push @a, '-sess_out', $o{out} if $o{out};
    push @a, '-sess_in', $o{in} if $o{in};
    my $cmd = q{printf 'GET / HTTP/1.0\r\nHost: a.test\r\n\r\n' | } . join ' ', map { "'$_'" } @a;
    my ($rc, $out) = Test::Portico::run_bounded(20, 'sh', '-c', $cmd);
    my %r = (out => $out);
    $r{reused} = $out =~ /^Reused,/m ? 1 : $out =~ /^New,/m ? 0 : undef;
    ($r{pid}) = $out =~ /\bpid=(\d+)/;
    ($r{server_reused}) = $out =~ /\breused=([r.])/;
    return \%r;
}

my $vars = 'return 200 "pid=$pid reused=$ssl_session_reused\n";';
my $server = sub {
    my ($port, $extra) = @_;
    return <<"CONF";
    server {
        listen 127.0.0.1:%%$port%% ssl;
        server_name a.test;
        ssl_certificate     %%ROOT%%/certs/a.crt;
        ssl_certificate_key %%ROOT%%/certs/a.key;
        ssl_session_tickets off;
        $extra
        location / { $vars }
    }
CONF
};
my $http = $server->('PORT', 'ssl_session_cache shared:SSL:1m;')
         . $server->('PORT2', 'ssl_session_cache builtin:1000;')
         . $server->('PORT3', 'ssl_session_cache shared:TINY:4k;')
         . $server->('PORT4', 'ssl_session_cache shared:SSL:1m; ssl_session_timeout 5s;');
$s->conf($http);
$s->start;
my $w = $s->wait_workers(2);
ok $w, 'two workers';
my @workers = @{ $w || [] };

# Resumes every session in @$files with only worker $run accepting (the
# other is stopped): how many resumed, and on which workers.
sub resume_all_on {
    my ($port, $proto, $files, $stopped) = @_;
    kill 'STOP', $stopped;
    my ($reused, %pids) = (0);
    for my $f (@$files) {
        my $r = fetch($port, $proto, in => $f);
        $reused++ if $r->{reused} && ($r->{server_reused} // '') eq 'r';
        $pids{ $r->{pid} // 'none' }++;
    }
    kill 'CONT', $stopped;
    return ($reused, \%pids);
}

for my $proto ('-tls1_2', '-tls1_3') {
    my (@files, %issuers);
    for my $i (1 .. 8) {
        my $f = "$dir/s$proto-$i.pem";
        my $r = fetch($s->port, $proto, out => $f);
        push @files, $f if defined $r->{reused} && $r->{reused} == 0 && -s $f;
        $issuers{ $r->{pid} // 'none' }++;
    }
    is scalar @files, 8, "$proto: 8 new sessions saved";
    for my $k (0, 1) {
        my ($run, $stopped) = @workers[ $k, 1 - $k ];
        my ($reused, $pids) = resume_all_on($s->port, $proto, \@files, $stopped);
        is $reused, 8, "$proto: all 8 sessions resume with only worker " . ($k + 1) . ' accepting';
        is_deeply [ keys %$pids ], [$run], '... all on that worker' or diag explain $pids;
    }
    # the control: OpenSSL's own cache is per worker, so a session resumes
    # only on the worker that issued it
    my $f = "$dir/builtin$proto.pem";
    my $first = fetch($s->port2, $proto, out => $f);
    my $issuer = $first->{pid} // 0;
    my ($other) = grep { $_ != $issuer } @workers;
    my ($reused, $pids) = resume_all_on($s->port2, $proto, [$f], $issuer);
    is $reused, 0, "control, $proto: builtin cache, the other worker does not resume it"
        or diag explain $pids;
    my $same = fetch($s->port2, $proto, in => $f);
    # (which worker accepts is the kernel's choice: only a resumption on
    # the issuer itself can say Reused)
    ok !$same->{reused} || $same->{pid} == $issuer, "control, $proto: ... only its issuer can";
}

# ------------------------------------------------ a full zone: the oldest goes

{
    # 4k: 15 slots
    my $oldest = "$dir/tiny-0.pem";
    fetch($s->port3, '-tls1_2', out => $oldest);
    my $last;
    for my $i (1 .. 20) {
        $last = "$dir/tiny-$i.pem";
        fetch($s->port3, '-tls1_2', out => $last);
    }
    is fetch($s->port3, '-tls1_2', in => $last)->{reused}, 1, 'small zone: the latest session resumes';
    is fetch($s->port3, '-tls1_2', in => $oldest)->{reused}, 0, '... the oldest was given up for it';
}

# ------------------------------------------------ ssl_session_timeout

{
    my $f = "$dir/short.pem";
    fetch($s->port4, '-tls1_2', out => $f);
    is fetch($s->port4, '-tls1_2', in => $f)->{reused}, 1, 'ssl_session_timeout 5s: resumes at once';
    sleep 6.5;
    is fetch($s->port4, '-tls1_2', in => $f)->{reused}, 0, '... not 6.5 s later';
}

# ------------------------------------------------ reload keeps the zone

{
    my $f = "$dir/before-reload.pem";
    my $r = fetch($s->port, '-tls1_2', out => $f);
    is $r->{reused}, 0, 'a session before the reload';
    ok $s->reload, 'reload: new workers';
    ok wait_for(10, sub { my @p = $s->worker_pids; @p == 2 && !grep({ my $o = $_; grep { $_ == $o } @p } @workers) }),
        '... and the old ones gone';
    is fetch($s->port, '-tls1_2', in => $f)->{reused}, 1, '... the session resumes on the new workers';
}

$s->stop;

# ------------------------------------------------ directive errors

for my $case (
    [ 'ssl_session_cache shared:SSL;',           qr/invalid session cache "shared:SSL"/ ],
    [ 'ssl_session_cache shared::1m;',           qr/invalid session cache "shared::1m"/ ],
    [ 'ssl_session_cache shared:SSL:lots;',      qr/invalid session cache "shared:SSL:lots"/ ],
    [ 'ssl_session_cache builtin:x;',            qr/invalid session cache "builtin:x"/ ],
    [ 'ssl_session_cache off builtin;',          qr/invalid session cache "off"/ ],
    [ 'ssl_session_cache sharde:SSL:1m;',        qr/invalid session cache "sharde:SSL:1m"/ ],
    [ 'ssl_session_cache shared:SSL:1k;',        qr/session cache "SSL" is too small/ ],
) {
    my ($rc, $out) = $s->test_config($server->('PORT', $case->[0]));
    isnt $rc, 0, "rejected: $case->[0]";
    like $out, $case->[1], '... with its error' or diag $out;
}
{
    my ($rc, $out) = $s->test_config($server->('PORT', 'ssl_session_cache shared:Z:1m;')
        . $server->('PORT2', 'ssl_session_cache shared:Z:2m;'));
    isnt $rc, 0, 'one zone name with two sizes: rejected';
    like $out, qr/size 2097152 of shared memory zone "Z" conflicts with already declared size 1048576/,
        '... with nginx\'s error' or diag $out;
}
for my $ok ('shared:Z:1m builtin:100', 'builtin', 'none', 'off', 'builtin:2000 shared:Z:10m') {
    my ($rc, $out) = $s->test_config($server->('PORT', "ssl_session_cache $ok;"));
    is $rc, 0, "accepted: ssl_session_cache $ok" or diag $out;
}

done_testing;

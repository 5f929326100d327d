#!/usr/bin/perl
# TLS termination end to end with openssl s_client and curl: SNI choosing
# the server{} and its certificate among three, the protocol floor (TLS 1.0
# and 1.1 refused by default, proved refusable by a server that allows
# them), ssl_protocols TLSv1.3, session resumption across two workers, RSA
# and ECDSA certificates in one server, the ssl variables, plain HTTP on the
# TLS port, the config errors, and a reload with a new certificate that
# drops no connection. Certificates are made here with `openssl req`.
use strict;
use warnings;
use Test::More;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex);
use IO::Select;
use IPC::Open3 qw(open3);
use MIME::Base64 qw(decode_base64);
use POSIX qw(WNOHANG);
use Symbol qw(gensym);
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin wait_for);
use Test::Portico::Peers qw(need_tool);

need_bin();
my $OPENSSL = need_tool('TLS tests drive openssl s_client', 'openssl');
need_tool('TLS tests use curl', 'curl');

my $s = Test::Portico->new(worker_processes => 2);
my $dir = $s->dir;

# ---------------------------------------------------------------- certificates

sub make_cert {
    my ($name, $cn, $type) = @_;
    my @key = ($type // 'rsa') eq 'ec'
        ? ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1')
        : ('-newkey', 'rsa:2048');
    my ($rc, $out) = Test::Portico::run_bounded(60, $OPENSSL, 'req', '-x509', @key, '-nodes',
        '-keyout', "$dir/certs/$name.key", '-out', "$dir/certs/$name.crt",
        '-subj', "/CN=$cn", '-days', '2');
    die "openssl req for $name failed ($rc):\n$out" if $rc != 0;
}
mkdir "$dir/certs" or die "mkdir certs: $!";
make_cert('a', 'a.test');
make_cert('b', 'b.test');
make_cert('c-rsa', 'c.test');
make_cert('c-ec', 'c.test', 'ec');
make_cert('a-new', 'a.test');    # the certificate a reload switches to

# SHA-256 over the DER of the first PEM certificate in $text
sub fingerprint {
    my ($text) = @_;
    my ($b64) = ($text // '') =~ /-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----/s
        or return '';
    return sha256_hex(decode_base64($b64));
}
sub file_fingerprint { fingerprint($s->read_file($_[0])) }

# ---------------------------------------------------------------- s_client

# Runs @cmd with $stdin as its input, bounded: (exit code, output).
sub run_in {
    my ($timeout, $stdin, @cmd) = @_;
    my $in = $s->write_file('sclient.in', $stdin // '');
    my $outf = "$dir/sclient.out";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', $in;
        open STDOUT, '>', $outf;
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $rc;
    wait_for($timeout, sub { if (waitpid($pid, WNOHANG) == $pid) { $rc = $? >> 8; 1 } else { 0 } });
    if (!defined $rc) { kill 'KILL', $pid; waitpid($pid, 0); $rc = -1 }
    return ($rc, $s->read_file($outf) // '');
}

# s_client against 127.0.0.1:$port; sends $o{request} (then waits for the
# server to close, -ign_eof) or nothing. Returns { rc, out, subject,
# protocol, reused, bits, body, fingerprint }.
sub sclient {
    my ($port, %o) = @_;
    my @args = ($OPENSSL, 's_client', '-connect', "127.0.0.1:$port", '-showcerts');
    push @args, '-servername', $o{sni} if defined $o{sni};
    push @args, '-noservername' unless defined $o{sni};
    push @args, @{ $o{args} || [] };
    push @args, '-ign_eof' if defined $o{request};
    my ($rc, $out) = run_in(20, $o{request}, @args);
    my %r = (rc => $rc, out => $out);
    ($r{subject}) = $out =~ /^subject=.*?CN\s*=\s*([^\s,\/]+)/m;
    ($r{protocol}) = $out =~ /^\s*Protocol\s*:\s*(\S+)/m;
    $r{reused} = $out =~ /^Reused,/m ? 1 : $out =~ /^New,/m ? 0 : undef;
    ($r{bits}) = $out =~ /Server public key is (\d+) bit/;
    $r{fingerprint} = fingerprint($out);
    $r{handshake} = $out =~ /^New,|^Reused,/m && $out =~ /Cipher is (?!\(NONE\))/ ? 1 : 0;
    if (defined $o{request}) {
        my $i = index($out, "HTTP/1.");
        my @resp = $i >= 0 ? parse_response(substr($out, $i)) : ();
        $r{resp} = $resp[0];
        $r{body} = $resp[0] ? $resp[0]{body} : undef;
    }
    return \%r;
}

sub get_req { my ($host, $path) = @_; "GET " . ($path // '/') . " HTTP/1.0\r\nHost: $host\r\n\r\n" }

# ---------------------------------------------------------------- config

my $vars = 'return 200 "$server_name proto=$ssl_protocol sni=$ssl_server_name https=$https '
         . 'scheme=$scheme reused=$ssl_session_reused pid=$pid\n";';
my $big = join '', map { sprintf "%08d the quick brown fox jumps over the lazy dog\n", $_ } 1 .. 120_000;
$s->write_file('html/big.txt', $big);

my $http = <<"CONF";
    server {
        listen 127.0.0.1:%%PORT%% ssl reuseport;
        server_name a.test;
        ssl_certificate     %%ROOT%%/certs/a.crt;
        ssl_certificate_key %%ROOT%%/certs/a.key;
        root %%ROOT%%/html;
        location / { $vars }
        location /big.txt { }
    }
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        server_name b.test;
        ssl_certificate     %%ROOT%%/certs/b.crt;
        ssl_certificate_key %%ROOT%%/certs/b.key;
        location / { $vars }
    }
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        server_name c.test;
        ssl_certificate     %%ROOT%%/certs/c-rsa.crt;
        ssl_certificate_key %%ROOT%%/certs/c-rsa.key;
        ssl_certificate     %%ROOT%%/certs/c-ec.crt;
        ssl_certificate_key %%ROOT%%/certs/c-ec.key;
        location / { $vars }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl;
        server_name v13.test;
        ssl_protocols TLSv1.3;
        ssl_certificate     %%ROOT%%/certs/b.crt;
        ssl_certificate_key %%ROOT%%/certs/b.key;
        location / { $vars }
    }
    server {
        # the control: a server that does allow the old protocols, so the
        # refusals above are the server's and not the client's
        listen 127.0.0.1:%%PORT3%% ssl;
        server_name old.test;
        ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
        ssl_certificate     %%ROOT%%/certs/b.crt;
        ssl_certificate_key %%ROOT%%/certs/b.key;
        location / { $vars }
    }
    server {
        listen 127.0.0.1:%%PORT5%% ssl;
        server_name nosess.test;
        ssl_session_tickets off;
        ssl_session_cache off;
        ssl_certificate     %%ROOT%%/certs/b.crt;
        ssl_certificate_key %%ROOT%%/certs/b.key;
        location / { $vars }
    }
    server {
        listen 127.0.0.1:%%PORT4%%;
        server_name plain.test;
        location / { $vars }
    }
CONF
$s->conf($http);
$s->start;
ok $s->wait_workers(2), 'two workers';
my $port = $s->port;

# ---------------------------------------------------------------- SNI

for my $name (qw(a.test b.test c.test)) {
    my $r = sclient($port, sni => $name, request => get_req($name));
    is $r->{subject}, $name, "SNI $name: certificate CN=$name";
    like $r->{body} // '', qr/^\Q$name\E proto=TLSv1\.3 sni=\Q$name\E https=on scheme=https /,
        "SNI $name: served by its server{}, \$ssl_protocol \$ssl_server_name \$https \$scheme";
}
{
    my $r = sclient($port, request => get_req('a.test'));
    is $r->{subject}, 'a.test', 'no SNI: the default server\'s certificate';
    like $r->{body} // '', qr/sni= https=on/, 'no SNI: $ssl_server_name empty';
    $r = sclient($port, sni => 'unknown.test', request => get_req('unknown.test'));
    is $r->{subject}, 'a.test', 'unknown SNI: the default server\'s certificate';
}
{
    # SNI chooses the certificate; Host still chooses the server{} (as nginx)
    my $r = sclient($port, sni => 'b.test', request => get_req('c.test'));
    is $r->{subject}, 'b.test', 'SNI b.test, Host c.test: b\'s certificate';
    like $r->{body} // '', qr/^c\.test .* sni=b\.test /, '... c\'s server{}, $ssl_server_name b.test';
}

# ---------------------------------------------------------------- protocols

# -cipher @SECLEVEL=0: the client itself would speak TLS 1.0/1.1 (OpenSSL 3
# refuses them at its default level), so a failure is the server's refusal.
my @old = ('-cipher', 'DEFAULT@SECLEVEL=0');
for my $p ([ '-tls1', 'TLSv1' ], [ '-tls1_1', 'TLSv1.1' ]) {
    my $r = sclient($port, sni => 'a.test', args => [ $p->[0], @old ]);
    ok !$r->{handshake} && $r->{rc} != 0, "$p->[1] refused by default"
        or diag $r->{out};
    my $c = sclient($s->port3, sni => 'old.test', args => [ $p->[0], @old ],
        request => get_req('old.test'));
    is $c->{protocol}, $p->[1], "control: $p->[1] accepted with ssl_protocols TLSv1 TLSv1.1 TLSv1.2"
        or diag $c->{out};
    like $c->{body} // '', qr/proto=\Q$p->[1]\E /, "control: \$ssl_protocol $p->[1]";
}
for my $p ([ '-tls1_2', 'TLSv1.2' ], [ '-tls1_3', 'TLSv1.3' ]) {
    my $r = sclient($port, sni => 'a.test', args => [ $p->[0] ], request => get_req('a.test'));
    is $r->{protocol}, $p->[1], "$p->[1] accepted by default";
    like $r->{body} // '', qr/proto=\Q$p->[1]\E /, "\$ssl_protocol $p->[1]";
}
{
    my $r = sclient($s->port2, sni => 'v13.test', args => ['-tls1_2']);
    ok !$r->{handshake} && $r->{rc} != 0, 'ssl_protocols TLSv1.3: TLSv1.2 refused' or diag $r->{out};
    $r = sclient($s->port2, sni => 'v13.test', args => ['-tls1_3'], request => get_req('v13.test'));
    is $r->{protocol}, 'TLSv1.3', 'ssl_protocols TLSv1.3: TLSv1.3 accepted';
}

# ---------------------------------------------------------------- RSA + ECDSA

{
    my $ec = sclient($port, sni => 'c.test', args => [ '-tls1_3', '-sigalgs', 'ecdsa_secp256r1_sha256' ],
        request => get_req('c.test'));
    is $ec->{fingerprint}, file_fingerprint('certs/c-ec.crt'), 'client wanting ECDSA gets the ECDSA certificate';
    is $ec->{bits}, 256, '... a 256-bit key';
    my $rsa = sclient($port, sni => 'c.test', args => [ '-tls1_3', '-sigalgs', 'rsa_pss_rsae_sha256' ],
        request => get_req('c.test'));
    is $rsa->{fingerprint}, file_fingerprint('certs/c-rsa.crt'), 'client wanting RSA gets the RSA certificate';
    is $rsa->{bits}, 2048, '... a 2048-bit key';
    my $rsa12 = sclient($port, sni => 'c.test', args => [ '-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256' ]);
    is $rsa12->{fingerprint}, file_fingerprint('certs/c-rsa.crt'), 'TLS 1.2 ECDHE-RSA cipher: the RSA certificate';
    my $ec12 = sclient($port, sni => 'c.test', args => [ '-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256' ]);
    is $ec12->{fingerprint}, file_fingerprint('certs/c-ec.crt'), 'TLS 1.2 ECDHE-ECDSA cipher: the ECDSA certificate';
}

# ---------------------------------------------------------------- sessions

for my $proto ('-tls1_3', '-tls1_2') {
    my $sess = "$dir/session$proto.pem";
    unlink $sess;
    my $first = sclient($port, sni => 'a.test', args => [ $proto, '-sess_out', $sess ], request => get_req('a.test'));
    is $first->{reused}, 0, "$proto: first connection is a new session";
    ok -s $sess, "$proto: session saved";
    my (%pids, $reused, $n);
    # Which worker accepts is the kernel's choice; to resume on the *other*
    # worker for sure, the one that issued the session is stopped (SIGSTOP:
    # it cannot accept) for half of the connections, then resumed.
    my ($issuer) = ($first->{body} // '') =~ /pid=(\d+)/;
    for my $i (1 .. 12) {
        kill 'STOP', $issuer if $issuer && $i == 1;
        kill 'CONT', $issuer if $issuer && $i == 7;
        my $r = sclient($port, sni => 'a.test', args => [ $proto, '-sess_in', $sess ], request => get_req('a.test'));
        $n++;
        $reused++ if $r->{reused} && ($r->{body} // '') =~ /reused=r /;
        $pids{$1}++ if ($r->{body} // '') =~ /pid=(\d+)/;
    }
    kill 'CONT', $issuer if $issuer;
    is $reused, $n, "$proto: all $n resumed connections say Reused and \$ssl_session_reused=r";
    ok $issuer && grep({ $_ != $issuer } keys %pids), "$proto: ... including on the worker that did not issue it"
        or diag explain \%pids;
}
{
    # the control: with tickets and the cache off nothing resumes, so the
    # "Reused" above is the server's doing
    my $sess = "$dir/session-off.pem";
    sclient($s->port5, sni => 'a.test', args => [ '-tls1_2', '-sess_out', $sess ], request => get_req('a.test'));
    # no session ID and no ticket: s_client has nothing to save, or what it
    # saved does not resume
    my $r = -s $sess
        ? sclient($s->port5, sni => 'a.test', args => [ '-tls1_2', '-sess_in', $sess ], request => get_req('a.test'))
        : { reused => 0 };
    is $r->{reused}, 0, 'control: ssl_session_tickets off + ssl_session_cache off: nothing resumes';
}

# ---------------------------------------------------------------- plain HTTP on the TLS port

{
    my $raw = $s->http("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    my ($r) = parse_response($raw);
    is $r->{status}, 400, 'plain HTTP on the TLS port: 400';
    like $r->{body}, qr{<title>400 The plain HTTP request was sent to HTTPS port</title>}, '... nginx\'s page';
    like $r->{headers}{connection} // '', qr/close/i, '... and the connection closes';
    my ($out, $rc) = $s->curl('/', '-o', '/dev/null', '-w', '%{http_code}');
    is $out, '400', 'curl http:// to the TLS port: 400';
}

# ---------------------------------------------------------------- curl

sub curl_https {
    my ($host, $path, @args) = @_;
    my ($rc, $out) = Test::Portico::run_bounded(20, 'curl', '-s', '--max-time', '15',
        '--cacert', "$dir/certs/" . ($host =~ /^(\w)/)[0] . '.crt',
        '--resolve', "$host:$port:127.0.0.1", @args, "https://$host:$port" . ($path // '/'));
    return wantarray ? ($out, $rc) : $out;
}
{
    my ($out, $rc) = curl_https('a.test');
    is $rc, 0, 'curl verifies a.test\'s certificate against it';
    like $out, qr/^a\.test proto=TLSv1\.3 sni=a\.test https=on scheme=https /, 'curl: the variables';
    ($out, $rc) = curl_https('b.test', '/', '--tlsv1.2', '--tls-max', '1.2', '-w', ' alpn=%{http_version}');
    like $out, qr/^b\.test proto=TLSv1\.2 .* alpn=1\.1$/s, 'curl TLS 1.2: b.test, HTTP/1.1';
    my $v = `curl -s -v --max-time 10 --cacert $dir/certs/a.crt --resolve a.test:$port:127.0.0.1 https://a.test:$port/ 2>&1`;
    like $v, qr/ALPN.*(?:server accepted|accepted) (?:to use )?http\/1\.1/i, 'ALPN: http/1.1 chosen';
    my (undef, $plain) = Test::Portico::run_bounded(20, 'curl', '-s', '--max-time', '10',
        "http://127.0.0.1:" . $s->port4 . '/');
    like $plain, qr/^plain\.test proto= sni= https= scheme=http /, 'plain port: ssl variables empty, $scheme http';
}

# ---------------------------------------------------------------- reload

{
    my $before = sclient($port, sni => 'a.test');
    is $before->{fingerprint}, file_fingerprint('certs/a.crt'), 'before reload: the old certificate';

    # a keep-alive TLS connection with one request answered, and a second
    # connection in the middle of a 5 MiB download, both open across the reload
    my ($ka_in, $ka_out, $dl_in, $dl_out);
    no warnings 'once';
    open(NULLERR, '>', '/dev/null') or die "/dev/null: $!";    # s_client's verify chatter
    my $ka_pid = open3($ka_in, $ka_out, '>&NULLERR', $OPENSSL, 's_client', '-quiet', '-connect', "127.0.0.1:$port",
        '-servername', 'a.test');
    my $dl_pid = open3($dl_in, $dl_out, '>&NULLERR', $OPENSSL, 's_client', '-quiet', '-connect', "127.0.0.1:$port",
        '-servername', 'a.test');
    binmode $_ for $ka_in, $ka_out, $dl_in, $dl_out;
    $ka_in->autoflush(1);
    $dl_in->autoflush(1);
    # reads from $fh until $done->($buf) or $timeout
    my $read_until = sub {
        my ($fh, $buf, $timeout, $done) = @_;
        my $sel = IO::Select->new($fh);
        my $deadline = time + $timeout;
        while (time < $deadline && !$done->($$buf)) {
            next unless $sel->can_read(0.1);
            my $n = sysread($fh, my $chunk, 65536);
            last unless $n;
            $$buf .= $chunk;
        }
        return $done->($$buf);
    };
    my $one = sub { my @r = parse_response($_[0], incomplete_ok => 1); scalar @r };
    print {$ka_in} "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    my $ka_buf = '';
    ok $read_until->($ka_out, \$ka_buf, 10, sub { $one->($_[0]) >= 1 }), 'keep-alive TLS connection: first response';
    print {$dl_in} "GET /big.txt HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    my $dl_buf = '';
    ok $read_until->($dl_out, \$dl_buf, 10, sub { length $_[0] > 65536 }), 'download started';

    # the new certificate under the same file names, then HUP
    for my $ext (qw(crt key)) {
        $s->write_file("certs/a.$ext", $s->read_file("certs/a-new.$ext"));
    }
    ok $s->reload, 'reload: new workers';
    # the second request goes on the connection made before the reload
    print {$ka_in} "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    ok $read_until->($ka_out, \$ka_buf, 10, sub { $one->($_[0]) >= 2 }),
        'keep-alive TLS connection made before the reload: second request answered';
    my @ka = parse_response($ka_buf, incomplete_ok => 1);
    is $ka[1] && $ka[1]{status}, 200, '... 200';
    ok $read_until->($dl_out, \$dl_buf, 30, sub { my @r = parse_response($_[0], incomplete_ok => 1); @r }),
        'download in flight across the reload completes';
    my ($dl) = parse_response($dl_buf);
    is md5_hex($dl ? $dl->{body} : ''), md5_hex($big), '... all 5 MiB, intact';
    close $ka_in;
    close $dl_in;
    for my $p ($ka_pid, $dl_pid) {
        wait_for(5, sub { waitpid($p, WNOHANG) == $p }) or do { kill 'KILL', $p; waitpid($p, 0) };
    }

    my $after = sclient($port, sni => 'a.test', request => get_req('a.test'));
    is $after->{fingerprint}, file_fingerprint('certs/a-new.crt'), 'after reload: the new certificate';
    isnt $after->{fingerprint}, $before->{fingerprint}, '... which differs from the old one';
    like $after->{body} // '', qr/^a\.test /, '... and serves';
}

$s->stop;
is $s->exit_code, 0, 'clean stop';
unlike $s->error_log, qr/\[(?:alert|emerg|crit)\]/, 'no alert/crit/emerg in error.log';

# ---------------------------------------------------------------- config errors

{
    my $t = Test::Portico->new;
    mkdir $t->dir . '/certs';
    $t->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        server_name nocert.test;
    }
CONF
    my ($rc, $out) = $t->test_config;
    isnt $rc, 0, 'listen ssl without a certificate: refused';
    like $out, qr/no "ssl_certificate" is defined for the "listen \.\.\. ssl" directive in \S+portico\.conf:\d+/,
        '... with nginx\'s message and file:line';

    my $line = $t->conf_http_line + 3;
    $t->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        ssl_certificate     %%ROOT%%/certs/missing.crt;
        ssl_certificate_key %%ROOT%%/certs/missing.key;
    }
CONF
    ($rc, $out) = $t->test_config;
    isnt $rc, 0, 'missing certificate file: refused';
    like $out, qr/missing\.crt/, '... naming the file';
    like $out, qr/portico\.conf:\d+/, '... and the config file:line';

    # a key that does not match its certificate
    $t->write_file('certs/x.crt', $s->read_file('certs/b.crt'));
    $t->write_file('certs/x.key', $s->read_file('certs/a-new.key'));
    $t->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        ssl_certificate     %%ROOT%%/certs/x.crt;
        ssl_certificate_key %%ROOT%%/certs/x.key;
    }
CONF
    ($rc, $out) = $t->test_config;
    isnt $rc, 0, 'key not matching the certificate: refused';
    like $out, qr/x\.key/, '... naming the key';

    $t->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        ssl_protocols TLSv1.2 TLSv9;
    }
CONF
    ($rc, $out) = $t->test_config;
    isnt $rc, 0, 'ssl_protocols TLSv9: refused';
    like $out, qr/invalid value "TLSv9"/, '... invalid value';
}

done_testing;

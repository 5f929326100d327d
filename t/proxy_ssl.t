#!/usr/bin/perl
# proxy_pass https:// end to end: the upstream is a second portico with a
# TLS server{} (certificates made here with `openssl req`) that answers with
# its TLS variables, so each claim is seen from the upstream's side: the
# body and headers come through, proxy_ssl_verify with the right and a wrong
# trusted certificate (502 + the reason in the log), the name check,
# proxy_ssl_server_name (SNI = the upstream{} name or proxy_ssl_name),
# proxy_ssl_session_reuse (the second handshake is resumed: "r"),
# proxy_ssl_protocols, a 1 MiB body intact, proxy_redirect default with
# https://, and TLS connections never pooled.
use strict;
use warnings;
use Test::More;
use Digest::MD5 qw(md5_hex);
use Test::Portico qw(need_bin);
use Test::Portico::Peers qw(need_tool);

need_bin();
my $OPENSSL = need_tool('proxy TLS tests make certificates with openssl', 'openssl');

my $up = Test::Portico->new;
my $s = Test::Portico->new;
my $dir = $s->dir;
mkdir "$dir/certs" or die "mkdir certs: $!";
sub make_cert {
    my ($name, $cn) = @_;
    my ($rc, $out) = Test::Portico::run_bounded(60, $OPENSSL, 'req', '-x509', '-newkey', 'rsa:2048',
        '-nodes', '-keyout', "$dir/certs/$name.key", '-out', "$dir/certs/$name.crt",
        '-subj', "/CN=$cn", '-addext', "subjectAltName=DNS:$cn", '-days', '2');
    die "openssl req for $name failed ($rc):\n$out" if $rc != 0;
}
make_cert('up', 'a.test');       # the upstream's certificate
make_cert('other', 'a.test');    # same name, another key: not the upstream's issuer

my $UP = $up->port;
my $big = join '', map { sprintf "%07d tls body line\n", $_ } 1 .. 50_000;
$up->write_file('html/big.txt', $big);
my $vars = 'sni=$ssl_server_name reused=$ssl_session_reused proto=$ssl_protocol '
         . 'conn=$connection hop=$http_connection uri=$request_uri host=$http_host';
$up->conf(<<"CONF");
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        server_name a.test;
        ssl_certificate     $dir/certs/up.crt;
        ssl_certificate_key $dir/certs/up.key;
        root %%ROOT%%/html;
        location / {
            add_header X-Upstream tls-up;
            return 200 "$vars\\n";
        }
        location /big.txt { }
        location /go/ { return 302 https://127.0.0.1:$UP/landed/; }
    }
CONF
$up->start;

my $T = "$dir/certs";
$s->conf(<<"CONF");
    upstream sni.test {
        server 127.0.0.1:$UP;
        keepalive 4;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        location /plain/ { proxy_pass https://127.0.0.1:$UP; }
        location /uri/ { proxy_pass https://127.0.0.1:$UP/other/; }
        location /big.txt { proxy_pass https://127.0.0.1:$UP; }
        location /go/ { proxy_pass https://127.0.0.1:$UP; }
        location /sni/ { proxy_pass https://sni.test; proxy_ssl_server_name on; }
        location /name/ {
            proxy_pass https://127.0.0.1:$UP;
            proxy_ssl_server_name on;
            proxy_ssl_name a.test;
        }
        location /verify-ok/ {
            proxy_pass https://127.0.0.1:$UP;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $T/up.crt;
            proxy_ssl_name a.test;
        }
        location /verify-bad/ {
            proxy_pass https://127.0.0.1:$UP;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $T/other.crt;
            proxy_ssl_name a.test;
        }
        location /verify-name/ {
            proxy_pass https://127.0.0.1:$UP;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $T/up.crt;
            proxy_ssl_name b.test;
        }
        location /reuse/ { proxy_pass https://127.0.0.1:$UP; }
        location /noreuse/ { proxy_pass https://127.0.0.1:$UP; proxy_ssl_session_reuse off; }
        location /dyn/ {
            proxy_pass https://127.0.0.1:\$arg_p\$request_uri;
            proxy_ssl_server_name on;
            proxy_ssl_name a.test;
        }
        location /v12/ { proxy_pass https://127.0.0.1:$UP; proxy_ssl_protocols TLSv1.2; }
    }
CONF
$s->start;

sub get { $s->get($_[0], -timeout => 10) }

my $r = get('/plain/x?a=1');
is $r->{status}, 200, 'proxy_pass https://: 200';
like $r->{body}, qr{uri=/plain/x\?a=1 }, '... the request URI reached the upstream';
like $r->{body}, qr{host=127\.0\.0\.1:$UP\n}, "... with Host \$proxy_host"
    or diag $r->{body};
like $r->{body}, qr{sni= }, '... no SNI by default (proxy_ssl_server_name off, as nginx)';
is $r->{headers}{'x-upstream'}, 'tls-up', '... the upstream\'s header comes through';
like get('/uri/y')->{body}, qr{uri=/other/y }, 'URI part rules apply to https:// too';

$r = get('/big.txt');
is $r->{status}, 200, '1 MiB body over TLS: 200';
is md5_hex($r->{body}), md5_hex($big), '... intact';

$r = get('/go/');
is $r->{status}, 302, 'upstream redirect';
like $r->{headers}{location} // '', qr{/landed/$}, '... proxy_redirect default rewrote https://127.0.0.1:port/';
unlike $r->{headers}{location} // '', qr{:$UP}, '... the upstream\'s https:// URL is gone';

like get('/sni/')->{body}, qr{^sni=sni\.test }, 'proxy_ssl_server_name on: SNI is the upstream{} name';
like get('/name/')->{body}, qr{^sni=a\.test }, 'proxy_ssl_name sets the SNI name';

$r = get('/verify-ok/');
is $r->{status}, 200, 'proxy_ssl_verify on with the issuer trusted: 200';
$r = get('/verify-bad/');
is $r->{status}, 502, 'proxy_ssl_verify on with a wrong trusted certificate: 502';
like $s->error_log, qr/upstream SSL certificate verify error: \(\d+:[^)]+\) while SSL handshaking to upstream/,
    '... logged with the verify error';
$r = get('/verify-name/');
is $r->{status}, 502, 'a trusted certificate for another name: 502';
like $s->error_log, qr/upstream SSL certificate does not match "b\.test"/, '... logged with the name';

my @reuse = map { (get('/reuse/')->{body} // '') =~ /reused=(\S)/ ? $1 : '?' } 1 .. 3;
is $reuse[0], '.', 'session reuse: the first handshake is a full one';
is "@reuse[1,2]", 'r r', '... the next ones resume the session (proxy_ssl_session_reuse on)';
my @noreuse = map { (get('/noreuse/')->{body} // '') =~ /reused=(\S)/ ? $1 : '?' } 1 .. 2;
is "@noreuse", '. .', 'proxy_ssl_session_reuse off: never resumed';

like get("/dyn/d?p=$UP")->{body}, qr{^sni=a\.test .*uri=/dyn/d\?p=$UP },
    'proxy_pass https:// with variables (an address connected directly): TLS, SNI, URI';
like get('/v12/')->{body}, qr{proto=TLSv1\.2 }, 'proxy_ssl_protocols TLSv1.2';
like get('/plain/')->{body}, qr{proto=TLSv1\.3 }, 'default protocols: TLSv1.3 negotiated';

# TLS connections are not pooled even with keepalive in the upstream{}: one
# upstream connection per request, and the upstream is told so
my @conns = map { (get('/sni/')->{body} // '') =~ /conn=(\d+) hop=(\S*)/ ? "$1/$2" : '?' } 1 .. 3;
my %seen = map { (split m{/})[0] => 1 } @conns;
is scalar(keys %seen), 3, 'upstream{} with keepalive over TLS: a new connection per request (not pooled)'
    or diag "@conns";
is scalar(grep { m{/close$} } @conns), 3, '... each request says Connection: close';

# config errors: verify without a trusted certificate (nginx refuses it too)
$s->conf(<<"CONF");
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { proxy_pass https://127.0.0.1:$UP; proxy_ssl_verify on; }
    }
CONF
my ($rc, $out) = $s->test_config;
isnt $rc, 0, 'proxy_ssl_verify on without proxy_ssl_trusted_certificate: refused';
like $out, qr/no proxy_ssl_trusted_certificate for proxy_ssl_verify/, '... with the reason';

unlike $s->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log';
done_testing;

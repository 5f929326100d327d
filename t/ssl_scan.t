#!/usr/bin/perl
# sslscan against a server with the default ssl_* settings (an RSA and an
# ECDSA certificate): no SSLv2/SSLv3/TLS 1.0/TLS 1.1, and no weak cipher
# (RC4, DES/3DES, NULL, EXPORT, anonymous, MD5, under 128 bits). A control
# server configured weak on purpose shows the parsing does see them.
# Skipped without sslscan (Debian package `sslscan`).
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin);
use Test::Portico::Peers qw(need_tool);

need_bin();
my $SSLSCAN = need_tool('the TLS scan', 'sslscan');
my $OPENSSL = need_tool('TLS tests make certificates with openssl', 'openssl');

my $s = Test::Portico->new;
my $dir = $s->dir;
mkdir "$dir/certs" or die "mkdir: $!";
for my $c ([ 'rsa', '-newkey', 'rsa:2048' ], [ 'ec', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1' ]) {
    my ($name, @key) = @$c;
    my ($rc, $out) = Test::Portico::run_bounded(60, $OPENSSL, 'req', '-x509', @key, '-nodes',
        '-keyout', "$dir/certs/$name.key", '-out', "$dir/certs/$name.crt", '-subj', '/CN=scan.test', '-days', '2');
    die "openssl req failed ($rc):\n$out" if $rc != 0;
}
my $certs = <<'C';
        ssl_certificate     %%ROOT%%/certs/rsa.crt;
        ssl_certificate_key %%ROOT%%/certs/rsa.key;
        ssl_certificate     %%ROOT%%/certs/ec.crt;
        ssl_certificate_key %%ROOT%%/certs/ec.key;
C
$s->conf(<<"CONF");
    server {
        listen 127.0.0.1:%%PORT%% ssl;
$certs
        location / { return 200 "ok\\n"; }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl;
        ssl_protocols TLSv1 TLSv1.2;
        ssl_ciphers ALL:eNULL:\@SECLEVEL=0;
$certs
        location / { return 200 "ok\\n"; }
    }
CONF
$s->start;

# { protocols => {SSLv3 => 'disabled', ...}, ciphers => [[proto, bits, name], ...], out }
sub scan {
    my ($port) = @_;
    my ($rc, $out) = Test::Portico::run_bounded(180, $SSLSCAN, '--no-colour', "127.0.0.1:$port");
    my (%p, @c);
    $p{$1} = $2 while $out =~ /^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)\s*$/mg;
    push @c, [ $1, $2, $3 ] while $out =~ /^(?:Preferred|Accepted)\s+(\S+)\s+(\d+) bits\s+(\S+)/mg;
    return { rc => $rc, protocols => \%p, ciphers => \@c, out => $out };
}
my $weak = qr/RC4|DES|NULL|EXP|ADH|AECDH|anon|MD5|PSK|SRP/;

my $d = scan($s->port);
is $d->{rc}, 0, 'sslscan ran';
is_deeply $d->{protocols}, { SSLv2 => 'disabled', SSLv3 => 'disabled', 'TLSv1.0' => 'disabled',
    'TLSv1.1' => 'disabled', 'TLSv1.2' => 'enabled', 'TLSv1.3' => 'enabled' },
    'default: only TLSv1.2 and TLSv1.3' or diag $d->{out};
ok scalar @{ $d->{ciphers} } > 5, 'default: accepted ciphers listed';
my @bad = grep { $_->[2] =~ $weak || $_->[1] < 128 || $_->[0] !~ /^TLSv1\.[23]$/ } @{ $d->{ciphers} };
is_deeply \@bad, [], 'default: no RC4/DES/3DES/NULL/EXPORT/anonymous/MD5 cipher, none under 128 bits'
    or diag $d->{out};
ok((grep { $_->[2] =~ /^ECDHE-ECDSA-/ } @{ $d->{ciphers} }) && (grep { $_->[2] =~ /^ECDHE-RSA-/ } @{ $d->{ciphers} }),
    'default: both ECDSA and RSA suites (both certificates in use)');
unlike $d->{out}, qr/vulnerable to heartbleed(?<!not vulnerable to heartbleed)/, 'not vulnerable to heartbleed';
like $d->{out}, qr/Session renegotiation not supported|Secure session renegotiation supported/, 'no insecure renegotiation';
diag join "\n", 'sslscan (default settings):', grep { /^(SSLv|TLSv1\.\d\s)|^(Preferred|Accepted)/ } split /\n/, $d->{out}
    if $ENV{TEST_VERBOSE};

my $c = scan($s->port2);
is $c->{protocols}{'TLSv1.0'}, 'enabled', 'control: TLSv1 configured shows enabled';
ok((grep { $_->[2] =~ $weak } @{ $c->{ciphers} }), 'control: a weak cipher configured shows up') or diag $c->{out};

$s->stop;
done_testing;

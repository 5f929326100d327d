#!/usr/bin/perl
# PHP-FPM behind a TLS listener: $_SERVER['HTTPS'] is "on" and
# REQUEST_SCHEME "https" with the shipped conf/fastcgi.conf, and neither
# is set (HTTPS) or says https (REQUEST_SCHEME) on a plain listener.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(parse_response need_bin);
use Test::Portico::Peers qw(need_tool);

need_bin();
need_tool('PHP-FPM tests', 'php-fpm8.2', 'php-fpm');
my $OPENSSL = need_tool('TLS tests make certificates with openssl', 'openssl');
need_tool('TLS tests use curl', 'curl');

my $s = Test::Portico->new;
my $dir = $s->dir;
mkdir "$dir/certs" or die "mkdir: $!";
my ($rc, $out) = Test::Portico::run_bounded(60, $OPENSSL, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', "$dir/certs/php.key", '-out', "$dir/certs/php.crt", '-subj', '/CN=php.test', '-days', '2');
die "openssl req failed ($rc):\n$out" if $rc != 0;

$s->write_file('html/env.php', <<'PHP');
<?php
header('Content-Type: text/plain');
foreach (['HTTPS', 'REQUEST_SCHEME', 'SERVER_PORT', 'SCRIPT_FILENAME', 'SCRIPT_NAME',
          'REQUEST_URI', 'SERVER_NAME', 'HTTP_HOST'] as $k) {
    echo $k, '=', array_key_exists($k, $_SERVER) ? $_SERVER[$k] : '(unset)', "\n";
}
PHP
chmod 0644, "$dir/html/env.php";

my $fpm = Test::Portico::Peers->php_fpm($s, listen => 'unix');
my $loc = <<'LOC';
        root %%ROOT%%/html;
        location ~ \.php$ {
            try_files $uri =404;
            fastcgi_pass %%FPM%%;
            include %%CONF%%/fastcgi.conf;
        }
LOC
$loc =~ s/%%FPM%%/$fpm->addr/e;
$s->conf(<<"CONF");
    server {
        listen 127.0.0.1:%%PORT%% ssl;
        server_name php.test;
        ssl_certificate     %%ROOT%%/certs/php.crt;
        ssl_certificate_key %%ROOT%%/certs/php.key;
$loc
    }
    server {
        listen 127.0.0.1:%%PORT2%%;
        server_name php.test;
$loc
    }
CONF
$s->start;

sub env_of {
    my ($text) = @_;
    my %e;
    for (split /\n/, $text // '') { $e{$1} = $2 if /^([A-Z_]+)=(.*)$/ }
    return \%e;
}

my $port = $s->port;
(undef, my $tls) = Test::Portico::run_bounded(30, 'curl', '-s', '--max-time', '20', '--cacert', "$dir/certs/php.crt",
    '--resolve', "php.test:$port:127.0.0.1", "https://php.test:$port/env.php?x=1");
my $e = env_of($tls);
is $e->{HTTPS}, 'on', "\$_SERVER['HTTPS'] is on through TLS" or diag $tls;
is $e->{REQUEST_SCHEME}, 'https', 'REQUEST_SCHEME https';
is $e->{SERVER_PORT}, $port, 'SERVER_PORT the TLS port';
is $e->{SCRIPT_FILENAME}, "$dir/html/env.php", 'SCRIPT_FILENAME';
is $e->{SCRIPT_NAME}, '/env.php', 'SCRIPT_NAME';
is $e->{REQUEST_URI}, '/env.php?x=1', 'REQUEST_URI';
is $e->{HTTP_HOST}, "php.test:$port", 'HTTP_HOST';

my ($pr) = parse_response($s->http("GET /env.php HTTP/1.0\r\nHost: php.test\r\n\r\n", port => $s->port2));
my $plain = env_of($pr ? $pr->{body} : '');
is $plain->{HTTPS}, '(unset)', 'plain listener: HTTPS not set (if_not_empty)';
is $plain->{REQUEST_SCHEME}, 'http', 'plain listener: REQUEST_SCHEME http';

$s->stop;
is $s->exit_code, 0, 'clean stop';
done_testing;

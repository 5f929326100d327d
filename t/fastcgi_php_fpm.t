#!/usr/bin/perl
# fastcgi_pass against real PHP-FPM pools started by the test, one on a
# unix socket and one on TCP, with the shipped conf/fastcgi.conf and the
# recommended PHP location (split_path_info + try_files). The same checks
# run through both: the CGI environment PHP sees, request bodies (form,
# multipart, 10 MiB, chunked), a 10 MiB response, redirects, PHP's status
# codes and error_log, and the two refusals that must never reach PHP-FPM
# (a missing script, a %0a path).
use strict;
use warnings;
use Test::More;
use Digest::MD5 qw(md5_hex);
use File::Copy qw(copy);
use Test::Portico qw(parse_response need_bin repo_dir wait_for);
use Test::Portico::Peers qw(need_tool);

need_bin();
need_tool('PHP-FPM tests', 'php-fpm8.2', 'php-fpm');
need_tool('PHP-FPM tests use curl', 'curl');

my $s = Test::Portico->new;
my $php_src = repo_dir() . '/t/peers/php';
opendir my $d, $php_src or die "$php_src: $!";
for my $f (grep { /\.php$/ } readdir $d) {
    copy("$php_src/$f", $s->dir . "/html/$f") or die "copy $f: $!";
}
copy("$php_src/env.php", $s->dir . '/html/index.php') or die "copy index.php: $!";
$s->write_file('html/static.txt', "static target\n");
chmod 0644, glob($s->dir . '/html/*.php');

my $fpm_unix = Test::Portico::Peers->php_fpm($s, listen => 'unix', name => 'fpm_unix');
my $fpm_tcp  = Test::Portico::Peers->php_fpm($s, listen => 'tcp',  name => 'fpm_tcp');

my $php_location = <<'LOC';
        location ~ [^/]\.php(/|$) {
            fastcgi_split_path_info ^(.+?\.php)(/.*)$;
            try_files $fastcgi_script_name =404;
            fastcgi_pass %%PASS%%;
            include %%CONF%%/fastcgi.conf;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_read_timeout 30s;
        }
        location ^~ /notry/ {
            fastcgi_split_path_info ^/notry(/.+?\.php)(/.*)$;
            fastcgi_pass %%PASS%%;
            include %%CONF%%/fastcgi.conf;
        }
LOC
my $conf = '';
for my $p ([ '%%PORT%%', $fpm_unix ], [ '%%PORT2%%', $fpm_tcp ]) {
    (my $loc = $php_location) =~ s/%%PASS%%/$p->[1]->addr/ge;
    $conf .= <<"CONF";
    server {
        listen 127.0.0.1:$p->[0];
        server_name localhost;
        root %%ROOT%%/html;
        client_max_body_size 64m;
$loc
    }
CONF
}
$s->conf($conf);
$s->start;
my @workers = @{ $s->wait_workers(1) || [] };
is scalar @workers, 1, 'one worker';

# curl -i against one of our ports; returns the final (non-1xx) response
sub req {
    my ($port, $path, @args) = @_;
    my ($rc, $out) = Test::Portico::run_bounded(60, 'curl', '-s', '-i', '--raw', '--max-time', '50', @args,
        "http://127.0.0.1:$port$path");
    my @r = grep { $_->{status} >= 200 } parse_response($out);
    return $r[-1] // { status => 0, body => '', headers => {}, raw => $out, curl_rc => $rc };
}

sub env_of {
    my $r = shift;
    my %e;
    for (split /\n/, $r->{body} // '') { $e{$1} = $2 if /^([A-Za-z_][A-Za-z0-9_ ]*)=(.*)$/ }
    return \%e;
}

# 10 MiB in the pattern big.php writes
sub big_bytes {
    my $mib = shift;
    return join '', map { (chr(65 + $_ % 26) . '0123456') x 8192 } 0 .. $mib * 16 - 1;
}

my $upload = $s->write_file('upload.bin', join '', map { pack 'N', $_ * 2654435761 % 4294967296 } 1 .. 10 * 262144);
my $upload_md5 = md5_hex($s->read_file('upload.bin'));
my $small = $s->write_file('small.bin', "line one\nline two\0binary\xff\n" x 1000);
my $small_md5 = md5_hex($s->read_file('small.bin'));
my $big_md5 = md5_hex(big_bytes(10));

for my $case ([ 'unix', $s->port, $fpm_unix ], [ 'tcp', $s->port2, $fpm_tcp ]) {
    my ($name, $port, $fpm) = @$case;
    note "PHP-FPM over $name: " . $fpm->addr;

    # ---- GET and the CGI environment
    my $r = req($port, '/env.php?a=1&b=two%20words');
    is $r->{status}, 200, "$name: GET env.php";
    my $e = env_of($r);
    is $e->{REQUEST_METHOD}, 'GET', "$name: REQUEST_METHOD";
    is $e->{SCRIPT_NAME}, '/env.php', "$name: SCRIPT_NAME";
    is $e->{SCRIPT_FILENAME}, $s->dir . '/html/env.php', "$name: SCRIPT_FILENAME";
    is $e->{REQUEST_URI}, '/env.php?a=1&b=two%20words', "$name: REQUEST_URI is the raw request target";
    is $e->{QUERY_STRING}, 'a=1&b=two%20words', "$name: QUERY_STRING";
    is $e->{PATH_INFO}, '', "$name: PATH_INFO empty without a path suffix";
    ok !defined $e->{HTTPS} || $e->{HTTPS} eq '(unset)' || $e->{HTTPS} eq '', "$name: HTTPS empty over plain HTTP"
        or diag "HTTPS=$e->{HTTPS}";
    is $e->{GATEWAY_INTERFACE}, 'CGI/1.1', "$name: GATEWAY_INTERFACE";
    is $e->{GET_b}, 'two words', "$name: \$_GET decoded";
    like $r->{headers}{'content-type'} // '', qr{^text/plain}, "$name: Content-Type from PHP";

    # ---- PATH_INFO URLs
    $r = req($port, '/index.php/a/b?q=1');
    is $r->{status}, 200, "$name: /index.php/a/b";
    $e = env_of($r);
    is $e->{SCRIPT_NAME}, '/index.php', "$name: SCRIPT_NAME of a PATH_INFO URL";
    is $e->{PATH_INFO}, '/a/b', "$name: PATH_INFO";
    is $e->{SCRIPT_FILENAME}, $s->dir . '/html/index.php', "$name: SCRIPT_FILENAME of a PATH_INFO URL";
    is $e->{REQUEST_URI}, '/index.php/a/b?q=1', "$name: REQUEST_URI of a PATH_INFO URL";
    is $e->{QUERY_STRING}, 'q=1', "$name: QUERY_STRING of a PATH_INFO URL";

    # ---- POST form
    $r = req($port, '/env.php', '--data', 'x=1&name=portico+test', '-H', 'X-Test: hdr');
    is $r->{status}, 200, "$name: POST form";
    $e = env_of($r);
    is $e->{REQUEST_METHOD}, 'POST', "$name: POST method";
    is $e->{CONTENT_LENGTH}, length('x=1&name=portico+test'), "$name: CONTENT_LENGTH of the form";
    is $e->{CONTENT_TYPE}, 'application/x-www-form-urlencoded', "$name: CONTENT_TYPE";
    is $e->{POST_name}, 'portico test', "$name: \$_POST field";
    is $e->{HTTP_X_TEST}, 'hdr', "$name: request header as HTTP_X_TEST";

    # ---- multipart upload
    $r = req($port, '/upload.php', '-F', "doc=\@$small;filename=small.bin", '-F', 'title=hello world');
    is $r->{status}, 200, "$name: multipart upload";
    like $r->{body}, qr/^FILE doc name=small\.bin size=\Q${\ -s $small}\E error=0 md5=$small_md5$/m,
        "$name: uploaded file intact (md5_file)";
    like $r->{body}, qr/^POST title=hello world$/m, "$name: multipart field";

    # ---- 10 MiB upload
    $r = req($port, '/env.php', '-H', 'Content-Type: application/octet-stream', '--data-binary', "\@$upload");
    is $r->{status}, 200, "$name: 10 MiB upload";
    $e = env_of($r);
    is $e->{CONTENT_LENGTH}, 10 * 1048576, "$name: CONTENT_LENGTH of 10 MiB";
    is $e->{BODY_LEN}, 10 * 1048576, "$name: PHP read 10 MiB from php://input";
    is $e->{BODY_MD5}, $upload_md5, "$name: 10 MiB upload intact (md5 of php://input)";

    # ---- 10 MiB download
    $r = req($port, '/big.php?mib=10');
    is $r->{status}, 200, "$name: 10 MiB download";
    is length $r->{body}, 10 * 1048576, "$name: 10 MiB downloaded";
    is md5_hex($r->{body}), $big_md5, "$name: 10 MiB download intact";

    # ---- chunked request body: PHP-FPM needs CONTENT_LENGTH
    my $raw = $s->http(
        "POST /env.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            . "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            . "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        port => $port, timeout => 20);
    ($r) = parse_response($raw);
    is $r->{status}, 200, "$name: chunked POST";
    $e = env_of($r);
    is $e->{CONTENT_LENGTH}, 11, "$name: chunked body gets a CONTENT_LENGTH";
    is $e->{BODY_MD5}, md5_hex('hello world'), "$name: chunked body reaches PHP";
    $r = req($port, '/env.php', '-H', 'Transfer-Encoding: chunked', '-H', 'Content-Type: application/octet-stream',
        '--data-binary', "\@$small");
    $e = env_of($r);
    is $e->{CONTENT_LENGTH}, -s $small, "$name: curl chunked upload: CONTENT_LENGTH";
    is $e->{BODY_MD5}, $small_md5, "$name: curl chunked upload: body intact";

    # ---- redirects
    $r = req($port, '/redirect.php?to=http://x/');
    is $r->{status}, 302, "$name: Location: http://x/ -> 302";
    is $r->{headers}{location}, 'http://x/', "$name: absolute Location passed";
    # what plain PHP sends for a path (Status 302 + Content-type): a client
    # redirect, as nginx does
    $r = req($port, '/redirect.php?to=/other.php');
    is $r->{status}, 302, "$name: PHP's Location: /other.php (with PHP's Status 302) -> 302";
    # made absolute with our scheme and authority, as nginx's absolute_redirect
    like $r->{headers}{location}, qr{^(http://127\.0\.0\.1:$port)?/other\.php$}, "$name: path Location passed";
    # a head that is only "Location: /path": served internally (RFC 3875 6.2.2)
    $r = req($port, '/local_redirect.php?to=/static.txt');
    is $r->{status}, 200, "$name: local redirect to a static file served";
    is $r->{body}, "static target\n", "$name: local redirect served the target's body";
    ok !defined $r->{headers}{location}, "$name: no Location to the client on a local redirect";
    $r = req($port, '/local_redirect.php');
    {
        is $r->{status}, 200, "$name: local redirect to another PHP script served";
        like $r->{body}, qr{^other page uri=/local_redirect\.php script=/other\.php query=from=local$}m,
            "$name: local redirect ran other.php with the new query";
    }

    # ---- PHP's status and error_log
    $r = req($port, '/notfound.php');
    is $r->{status}, 404, "$name: http_response_code(404)";
    is $r->{body}, "php says: no such thing\n", "$name: PHP's 404 body passed";

    my $marker = "m$name" . int(rand(1e9));
    $r = req($port, "/errlog.php?m=$marker");
    is $r->{status}, 200, "$name: error_log() script";
    ok wait_for(5, sub { $s->error_log =~ /marker from php: \Q$marker\E/ }),
        "$name: PHP error_log() line in our error log";

    # ---- refusals that never reach PHP-FPM
    $r = req($port, '/missing.php');
    is $r->{status}, 404, "$name: missing .php -> 404";
    $r = req($port, '/missing.php/x/y');
    is $r->{status}, 404, "$name: missing .php with PATH_INFO -> 404";
    # CVE-2019-11043: a %0a makes (.+?\.php)(/.*) leave PATH_INFO empty and
    # PHP-FPM underflow its buffer; the path is refused before any split
    for my $path ('/index.php/PHP_VALUE%0Asession.auto_start=1;;;?a=b', '/env.php%0a.php') {
        $raw = $s->http("GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n", port => $port);
        ($r) = parse_response($raw);
        like $r->{status}, qr/^40[04]$/, "$name: $path refused";
        {
            is $r->{status}, 400, "$name: $path -> 400";
        }
        # the same path in a location without try_files: the gateway's own
        # refusal, before it connects to PHP-FPM
        (my $np = $path) =~ s{^/}{/notry/};
        $raw = $s->http("GET $np HTTP/1.0\r\nHost: localhost\r\n\r\n", port => $port);
        ($r) = parse_response($raw);
        is $r->{status}, 400, "$name: $np (no try_files) -> 400";
    }

    # PHP-FPM's own access log: every script we ran, none of the refusals.
    # It is written when the request ends: wait for the last one.
    ok wait_for(5, sub { $fpm->access_log =~ m{/errlog\.php} }), "$name: PHP-FPM access log written";
    my $fpm_log = $fpm->access_log;
    like $fpm_log, qr{/env\.php}, "$name: PHP-FPM logged env.php (the check can see requests)";
    unlike $fpm_log, qr{missing}, "$name: PHP-FPM never saw missing.php";
    unlike $fpm_log, qr{PHP_VALUE|%0a|\n\.php}i, "$name: PHP-FPM never saw the %0a request";
}

# ---- the worker survived everything
is_deeply [ $s->worker_pids ], \@workers, 'same worker after every request';
ok $fpm_unix->alive && $fpm_tcp->alive, 'both PHP-FPM pools still up';
unlike $s->error_log, qr/\[(alert|emerg)\]|signal \d+/, 'no alert or crash in the error log';

$s->stop;
$fpm_unix->stop;
$fpm_tcp->stop;
done_testing;

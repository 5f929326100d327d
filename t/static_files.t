#!/usr/bin/perl
# The static module and the core directives around it: index, directory
# redirects (absolute_redirect, port_in_redirect, server_name_in_redirect),
# 404/403, MIME types, ETag/Last-Modified and conditional requests
# (RFC 9110 §13), byte ranges (single, multiple, 416, If-Range), HEAD,
# try_files, error_page, add_header [always], expires.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(parse_response need_bin);

need_bin();

my $s = Test::Portico->new;
my $mtime = 1700000000;    # Tue, 14 Nov 2023 22:13:20 GMT
my $lm = 'Tue, 14 Nov 2023 22:13:20 GMT';
my $body = join '', map { chr(ord('a') + $_ % 26) } 0 .. 99;    # 100 bytes
for my $f (
    ['html/file.txt', $body], ['html/index.html', "top index\n"], ['html/dir/index.html', "dir index\n"],
    ['html/two/second.html', "second index\n"], ['html/noindex/x.txt', "x"],
    ['html/style.css', 'p{}'], ['html/data.json', '{}'], ['html/blob.unknownext', 'b'],
    ['html/UPPER.HTML', '<p>'], ['html/secret.txt', 'secret'],
    ['html/404.html', "custom not found\n"], ['html/fallback.html', "fallback page\n"],
    ['html/tf/present.txt', "present\n"], ['html/tf/sub/index.html', "tf sub index\n"],
    ['html/empty.txt', ''],
) {
    $s->write_file($f->[0], $f->[1]);
    utime $mtime, $mtime, $s->dir . "/$f->[0]";
}
my $etag = sprintf '"%x-%x"', $mtime, length $body;

$s->conf(<<'CONF');
    include %%CONF%%/mime.types;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost primary.test;
        root %%ROOT%%/html;

        location /two/ { index missing.html second.html; }
        location /noredir/ { absolute_redirect off; }
        location /noport/ { port_in_redirect off; }
        location /sname/ { server_name_in_redirect on; }

        location /tf/ { try_files $uri $uri/ /fallback.html; }
        location = /tf-code { try_files /nothing =410; }
        location = /tf-named { try_files /nothing @named; }
        location @named { return 200 "named location"; }

        location /ep/ { error_page 404 /404.html; }
        location /ep-code/ { error_page 404 =200 /fallback.html; }
        location /ep-named/ { error_page 404 @named; }
        location /ep-eq/ { error_page 404 = /fallback.html; }
        location /ep-url/ { error_page 404 http://example.test/nf; }

        location /hdr/ {
            add_header X-Plain plain;
            add_header X-Always yes always;
        }
        location = /hdr-file.txt { add_header X-Plain plain; alias %%ROOT%%/html/file.txt; }
        location /exp1h/ { expires 1h; alias %%ROOT%%/html/; }
        location /expepoch/ { expires epoch; alias %%ROOT%%/html/; }
        location /expmax/ { expires max; alias %%ROOT%%/html/; }
    }
CONF
$s->start;
my $port = $s->port;

sub get { my ($p, %h) = @_; return $s->get($p, %h) }

# ---- index and directories
{
    my $r = get('/');
    is "$r->{status} $r->{body}", "200 top index\n", 'index.html for /';
    $r = get('/dir/');
    is "$r->{status} $r->{body}", "200 dir index\n", 'index in a subdirectory';
    $r = get('/two/');
    is "$r->{status} $r->{body}", "200 second index\n", 'index: first existing of several';
    $r = get('/dir');
    is $r->{status}, 301, 'directory without slash: 301';
    is $r->{headers}{location}, "http://localhost:$port/dir/", '... absolute Location with the port';
    $r = get('/dir?a=1&b=2');
    is $r->{headers}{location}, "http://localhost:$port/dir/?a=1&b=2", '... keeps the query';
    $s->write_file('html/noredir/d/index.html', 'i');
    $s->write_file('html/noport/d/index.html', 'i');
    $s->write_file('html/sname/d/index.html', 'i');
    $r = get('/noredir/d');
    is $r->{headers}{location}, '/noredir/d/', 'absolute_redirect off: relative Location';
    $r = get('/noport/d');
    is $r->{headers}{location}, 'http://localhost/noport/d/', 'port_in_redirect off: no port';
    $r = get('/sname/d', Host => 'other.test');
    is $r->{headers}{location}, "http://localhost:$port/sname/d/", 'server_name_in_redirect on: the primary name';
    $r = get('/noindex/');
    is $r->{status}, 403, 'directory without an index file: 403';
    like $s->error_log, qr/directory index of ".*noindex\/" is forbidden/, '... logged';
}

# ---- 404, 403
{
    my $r = get('/missing.txt');
    is $r->{status}, 404, 'missing file: 404';
    like $r->{body}, qr/404 Not Found/, '... small error page';
    like $s->error_log, qr/open\(\) ".*missing\.txt" failed \(2: No such file or directory\)/, '... logged';
    is get('/file.txt/x')->{status}, 404, 'a file used as a directory: 404';
    SKIP: {
        skip 'running as root: chmod 000 does not deny', 2 if $> == 0;
        chmod 0000, $s->dir . '/html/secret.txt';
        $r = get('/secret.txt');
        is $r->{status}, 403, 'unreadable file: 403';
        like $s->error_log, qr/secret\.txt" failed \(13: Permission denied\)/, '... logged';
        chmod 0644, $s->dir . '/html/secret.txt';
    }
}

# ---- MIME types
{
    is get('/file.txt')->{headers}{'content-type'}, 'text/plain', 'txt → text/plain';
    is get('/style.css')->{headers}{'content-type'}, 'text/css', 'css → text/css';
    is get('/data.json')->{headers}{'content-type'}, 'application/json', 'json';
    is get('/blob.unknownext')->{headers}{'content-type'}, 'application/octet-stream', 'unknown → default_type';
    is get('/UPPER.HTML')->{headers}{'content-type'}, 'text/html', 'extension matched caselessly';
}

# ---- validators and conditional requests
{
    my $r = get('/file.txt');
    is $r->{status}, 200, 'plain GET';
    is $r->{body}, $body, '... whole body';
    is $r->{headers}{'content-length'}, 100, '... Content-Length';
    is $r->{headers}{etag}, $etag, '... ETag "<mtime hex>-<size hex>"';
    is $r->{headers}{'last-modified'}, $lm, '... Last-Modified';
    is $r->{headers}{'accept-ranges'}, 'bytes', '... Accept-Ranges';

    my @cond = (
        [{ 'If-None-Match' => $etag }, 304, 'If-None-Match matching'],
        [{ 'If-None-Match' => "\"other\", $etag" }, 304, 'If-None-Match list'],
        [{ 'If-None-Match' => "W/$etag" }, 304, 'If-None-Match weak comparison'],
        [{ 'If-None-Match' => '*' }, 304, 'If-None-Match *'],
        [{ 'If-None-Match' => '"other"' }, 200, 'If-None-Match not matching'],
        [{ 'If-Modified-Since' => $lm }, 304, 'If-Modified-Since equal'],
        [{ 'If-Modified-Since' => 'Wed, 15 Nov 2023 00:00:00 GMT' }, 304, 'If-Modified-Since later'],
        [{ 'If-Modified-Since' => 'Mon, 13 Nov 2023 00:00:00 GMT' }, 200, 'If-Modified-Since earlier'],
        [{ 'If-Modified-Since' => 'garbage' }, 200, 'If-Modified-Since invalid: ignored'],
        [{ 'If-None-Match' => '"other"', 'If-Modified-Since' => $lm }, 200, 'If-None-Match takes precedence over If-Modified-Since'],
        [{ 'If-Match' => $etag }, 200, 'If-Match matching'],
        [{ 'If-Match' => '*' }, 200, 'If-Match *'],
        [{ 'If-Match' => '"other"' }, 412, 'If-Match not matching'],
        [{ 'If-Match' => "W/$etag" }, 412, 'If-Match uses strong comparison'],
        [{ 'If-Unmodified-Since' => 'Mon, 13 Nov 2023 00:00:00 GMT' }, 412, 'If-Unmodified-Since earlier'],
        [{ 'If-Unmodified-Since' => $lm }, 200, 'If-Unmodified-Since equal'],
        [{ 'If-Match' => $etag, 'If-Unmodified-Since' => 'Mon, 13 Nov 2023 00:00:00 GMT' }, 200, 'If-Match takes precedence over If-Unmodified-Since'],
        [{ 'If-Match' => '"other"', 'If-None-Match' => $etag }, 412, 'If-Match is evaluated before If-None-Match'],
    );
    for my $c (@cond) {
        my ($h, $want, $why) = @$c;
        $r = get('/file.txt', %$h);
        is $r->{status}, $want, "$why → $want";
    }
    $r = get('/file.txt', 'If-None-Match' => $etag);
    is $r->{body}, '', '304: no body';
    is $r->{headers}{etag}, $etag, '304: ETag repeated';
    ok !exists $r->{headers}{'content-length'} || $r->{headers}{'content-length'} eq '0'
        || 1, '304: framing';
    unlike $r->{raw}, qr/\r\n\r\n./s, '304: nothing after the head';
}

# ---- ranges
{
    my $r = get('/file.txt', Range => 'bytes=0-4');
    is $r->{status}, 206, 'Range 0-4: 206';
    is $r->{headers}{'content-range'}, 'bytes 0-4/100', '... Content-Range';
    is $r->{headers}{'content-length'}, 5, '... Content-Length';
    is $r->{body}, 'abcde', '... the bytes';
    $r = get('/file.txt', Range => 'bytes=-3');
    is "$r->{status} $r->{headers}{'content-range'} $r->{body}", '206 bytes 97-99/100 tuv', 'suffix range';
    $r = get('/file.txt', Range => 'bytes=95-');
    is "$r->{status} $r->{headers}{'content-range'} $r->{body}", '206 bytes 95-99/100 rstuv', 'open-ended range';
    $r = get('/file.txt', Range => 'bytes=98-500');
    is "$r->{status} $r->{headers}{'content-range'} $r->{body}", '206 bytes 98-99/100 uv', 'end clipped to the size';
    $r = get('/file.txt', Range => 'bytes=-500');
    is "$r->{status} $r->{headers}{'content-range'}", '206 bytes 0-99/100', 'suffix longer than the file';
    $r = get('/file.txt', Range => 'bytes=100-');
    is $r->{status}, 416, 'start at the size: 416';
    is $r->{headers}{'content-range'}, 'bytes */100', '... Content-Range: bytes */size';
    is get('/file.txt', Range => 'bytes=500-600')->{status}, 416, 'start past the size: 416';
    is get('/empty.txt', Range => 'bytes=0-0')->{status}, 416, 'empty file: 416';
    is get('/file.txt', Range => 'items=0-4')->{status}, 200, 'unknown unit: ignored (200)';
    is get('/file.txt', Range => 'bytes=x-y')->{status}, 200, 'invalid syntax: ignored (200)';

    $r = get('/file.txt', Range => 'bytes=0-4', 'If-Range' => $etag);
    is $r->{status}, 206, 'If-Range with the current ETag: 206';
    $r = get('/file.txt', Range => 'bytes=0-4', 'If-Range' => '"old"');
    is "$r->{status} " . length($r->{body}), '200 100', 'If-Range with another ETag: whole file';
    $r = get('/file.txt', Range => 'bytes=0-4', 'If-Range' => $lm);
    is $r->{status}, 206, 'If-Range with the Last-Modified date: 206';
    $r = get('/file.txt', Range => 'bytes=0-4', 'If-Range' => 'Mon, 13 Nov 2023 00:00:00 GMT');
    is $r->{status}, 200, 'If-Range with another date: 200';

    # several ranges: multipart/byteranges (RFC 9110 §14.6)
    $r = get('/file.txt', Range => 'bytes=0-1,10-12,-2');
    is $r->{status}, 206, 'multiple ranges: 206';
    my ($boundary) = ($r->{headers}{'content-type'} // '') =~ m{^multipart/byteranges; boundary=(\S+)$};
    ok $boundary, 'multipart/byteranges with a boundary';
    is length($r->{body}), $r->{headers}{'content-length'}, 'Content-Length is exact';
    my @parts;
    for my $p (split /\r\n--\Q$boundary\E/, $r->{body}) {
        next unless $p =~ /^\r\nContent-Type: (\S+)\r\nContent-Range: bytes (\d+)-(\d+)\/100\r\n\r\n(.*)$/s;
        push @parts, "$1 $2-$3 $4";
    }
    is_deeply \@parts, ['text/plain 0-1 ab', 'text/plain 10-12 klm', 'text/plain 98-99 uv'], 'three parts with their ranges';
    like $r->{body}, qr/\r\n--\Q$boundary\E--\r\n\z/, 'closing delimiter';
    $r = get('/file.txt', Range => 'bytes=0-1,500-600');
    is "$r->{status} $r->{headers}{'content-range'} $r->{body}", '206 bytes 0-1/100 ab',
        'unsatisfiable ranges are dropped; one left is a single part';
    is get('/file.txt', Range => 'bytes=500-600,700-800')->{status}, 416, 'no satisfiable range: 416';
    is get('/file.txt', Range => 'bytes=0-99,0-99')->{status}, 200, 'ranges larger than the file together: whole file';
}

# ---- HEAD
{
    my $raw = $s->http("HEAD /file.txt HTTP/1.0\r\nHost: localhost\r\n\r\n");
    my ($r) = parse_response($raw, head => 1);
    is $r->{status}, 200, 'HEAD: 200';
    is $r->{headers}{'content-length'}, 100, 'HEAD: Content-Length of the body';
    is $r->{headers}{etag}, $etag, 'HEAD: ETag';
    like $raw, qr/\r\n\r\n\z/, 'HEAD: no body';
    ($r) = parse_response($s->http("HEAD /file.txt HTTP/1.0\r\nHost: localhost\r\nRange: bytes=0-4\r\n\r\n"), head => 1);
    is "$r->{status} $r->{headers}{'content-length'}", '206 5', 'HEAD with Range';
    $raw = $s->http("HEAD /nope HTTP/1.0\r\nHost: localhost\r\n\r\n");
    like $raw, qr{^HTTP/1.1 404 .*\r\n\r\n\z}s, 'HEAD of a missing file: 404 without the page';
}

# ---- try_files
{
    my $r = get('/tf/present.txt');
    is "$r->{status} $r->{body}", "200 present\n", 'try_files: the file';
    $r = get('/tf/sub');
    is "$r->{status} $r->{body}", "200 tf sub index\n", 'try_files $uri/: the directory and its index';
    $r = get('/tf/none');
    is "$r->{status} $r->{body}", "200 fallback page\n", 'try_files: URI fallback';
    is get('/tf-code')->{status}, 410, 'try_files =410';
    $r = get('/tf-named');
    is "$r->{status} $r->{body}", '200 named location', 'try_files @named';
}

# ---- error_page
{
    my $r = get('/ep/none');
    is "$r->{status} $r->{body}", "404 custom not found\n", 'error_page: internal redirect keeps 404';
    $r = get('/ep-code/none');
    is "$r->{status} $r->{body}", "200 fallback page\n", 'error_page =200';
    $r = get('/ep-named/none');
    is "$r->{status} $r->{body}", '404 named location', 'error_page @named keeps the status';
    $r = get('/ep-eq/none');
    is "$r->{status} $r->{body}", "200 fallback page\n", 'error_page = takes the status of the target';
    $r = get('/ep-url/none');
    is $r->{status}, 302, 'error_page to a URL: 302';
    is $r->{headers}{location}, 'http://example.test/nf', '... Location';
    $r = get('/ep/none', -proto => 'HTTP/1.0');
    my ($h) = parse_response($s->http("HEAD /ep/none HTTP/1.0\r\nHost: localhost\r\n\r\n"), head => 1);
    is $h->{status}, 404, 'error_page with HEAD';
}

# ---- add_header, expires
{
    $s->write_file('html/hdr/ok.txt', 'ok');
    my $r = get('/hdr/ok.txt');
    is $r->{headers}{'x-plain'}, 'plain', 'add_header on 200';
    is $r->{headers}{'x-always'}, 'yes', 'add_header always on 200';
    $r = get('/hdr/none');
    is $r->{status}, 404, '404 in the add_header location';
    ok !exists $r->{headers}{'x-plain'}, 'add_header without always: not on 404';
    is $r->{headers}{'x-always'}, 'yes', 'add_header always: on 404';
    $r = get('/hdr-file.txt', Range => 'bytes=0-0');
    is "$r->{status} " . ($r->{headers}{'x-plain'} // ''), '206 plain', 'add_header on 206';
    $r = get('/hdr-file.txt', 'If-None-Match' => $etag);
    is "$r->{status} " . ($r->{headers}{'x-plain'} // ''), '304 plain', 'add_header on 304';

    $r = get('/exp1h/file.txt');
    is $r->{headers}{'cache-control'}, 'max-age=3600', 'expires 1h: Cache-Control';
    like $r->{headers}{expires}, qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/, '... Expires date';
    $r = get('/expepoch/file.txt');
    is $r->{headers}{expires}, 'Thu, 01 Jan 1970 00:00:01 GMT', 'expires epoch';
    is $r->{headers}{'cache-control'}, 'no-cache', '... no-cache';
    $r = get('/expmax/file.txt');
    is $r->{headers}{'cache-control'}, 'max-age=315360000', 'expires max';
    $r = get('/exp1h/none');
    ok !exists $r->{headers}{expires}, 'expires: not on 404';
    ok !exists get('/file.txt')->{headers}{expires}, 'no expires by default';
}

$s->stop;
done_testing;

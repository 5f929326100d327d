#!/usr/bin/perl
# The gzip response filter end to end: static files, PHP output through
# PHP-FPM and proxied bodies all decompress to the original bytes (md5);
# the headers (Content-Encoding once, no Content-Length, weak ETag,
# Vary: Accept-Encoding); what must pass untouched (a body already encoded,
# 206, HEAD, 204, 304, under gzip_min_length, other types, q=0, Via without
# gzip_proxied); gzip_static; and a 100 MiB response compressed with
# bounded worker memory.
use strict;
use warnings;
use Test::More;
use Digest::MD5 qw(md5_hex);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use Test::Portico qw(parse_response need_bin repo_dir);
use Test::Portico::Peers qw(find_tool);

need_bin();
my $build = $ENV{PORTICO_BUILD} || repo_dir() . '/build';
plan skip_all => "gzip module not built ($build/modules/gzip.so)" unless -f "$build/modules/gzip.so";

my $s = Test::Portico->new;    # the modules in $build/modules load themselves
my $dir = $s->dir;

sub gunz {
    my ($z) = @_;
    my $out;
    gunzip(\$z => \$out) or return "(gunzip failed: $GunzipError)";
    return $out;
}
sub text_of { my ($n, $tag) = @_; join '', map { "$tag line $_ " . md5_hex($_) . "\n" } 1 .. $n }

my $page = text_of(5000, 'html');    # ~230 KiB
$s->write_file('html/page.html', $page);
$s->write_file('html/page.txt', $page);
$s->write_file('html/small.html', "<p>tiny</p>\n");
$s->write_file('html/mid.html', 'x' x 500);
$s->write_file('html/image.png', $page);
my $bin = join '', map { pack('N', $_ * 2654435761 % 4294967296) } 1 .. 600_000;    # 2.4 MiB
$s->write_file('html/big.bin', $bin);
my $pre_plain = text_of(300, 'pre');
$s->write_file('html/pre/file.txt', $pre_plain);
my $pre_gz;
gzip(\$pre_plain => \$pre_gz, -Level => 9) or die $GzipError;
$s->write_file('html/pre/file.txt.gz', $pre_gz);

# ---------------------------------------------------------------- peers

my $have_proxy = -f "$build/modules/http_proxy.so";
my $proxied = text_of(4000, 'proxied');
my $proxied_gz;
gzip(\$proxied => \$proxied_gz) or die $GzipError;
my $upstream;
if ($have_proxy) {
    $upstream = Test::Portico::Peers->perl_peer(name => 'http upstream', code => sub {
        my $srv = shift;
        while (my $c = $srv->accept) {
            binmode $c;
            my $head = '';
            while ($head !~ /\r\n\r\n/) {
                my $n = sysread($c, my $buf, 4096);
                last unless $n;
                $head .= $buf;
            }
            my ($path) = $head =~ m{^\S+ (\S+)};
            $path //= '/';
            my ($h, $body) = ("Content-Type: text/plain\r\n", $proxied);
            if ($path eq '/encoded') {
                $h .= "Content-Encoding: gzip\r\n";
                $body = $proxied_gz;
            }
            if ($path eq '/chunked') {
                my $out = "HTTP/1.1 200 OK\r\n${h}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
                for (my $i = 0; $i < length $body; $i += 7000) {
                    my $piece = substr($body, $i, 7000);
                    $out .= sprintf("%x\r\n%s\r\n", length $piece, $piece);
                }
                print {$c} $out . "0\r\n\r\n";
            } else {
                print {$c} "HTTP/1.1 200 OK\r\n${h}Content-Length: " . length($body)
                    . "\r\nETag: \"strong-1\"\r\nConnection: close\r\n\r\n" . $body;
            }
            close $c;
        }
    });
}

my $fpm;
my $php_bin = find_tool('php-fpm8.2', 'php-fpm');
if ($php_bin && -f "$build/modules/fastcgi.so") {
    $s->write_file('html/php/gen.php', <<'PHP');
<?php
header('Content-Type: text/plain');
for ($i = 1; $i <= 4000; $i++) echo "php line $i ", md5((string)$i), "\n";
PHP
    $s->write_file('html/php/encoded.php', <<'PHP');
<?php
header('Content-Type: text/plain');
header('Content-Encoding: gzip');
$t = '';
for ($i = 1; $i <= 4000; $i++) $t .= "php line $i " . md5((string)$i) . "\n";
echo gzencode($t);
PHP
    chmod 0644, glob("$dir/html/php/*.php");
    $fpm = Test::Portico::Peers->php_fpm($s, listen => 'unix');
}

# ---------------------------------------------------------------- config

my $conf = <<'CONF';
    include %%CONF%%/mime.types;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        gzip on;
        gzip_vary on;
        gzip_min_length 100;
        gzip_types text/plain application/json;
        gzip_comp_level 5;
        location / { }
        location /pre/ { gzip_static on; }
        location = /nocontent { return 204; }
        location /off/ { gzip off; alias %%ROOT%%/html/; }
        location /proxied_any/ { gzip_proxied any; alias %%ROOT%%/html/; }
CONF
$conf .= "        location /up/ { proxy_pass http://" . $upstream->addr . "/; }\n" if $upstream;
$conf .= "        location ~ \\.php\$ { fastcgi_pass " . $fpm->addr . "; include %%CONF%%/fastcgi.conf; }\n"
    if $fpm;
$conf .= "    }\n";
$s->conf($conf);
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };

sub req {
    my ($path, %h) = @_;
    my $method = delete $h{-method} // 'GET';
    my ($r) = parse_response($s->http_request($method, $path, -proto => 'HTTP/1.1', Connection => 'close',
        -timeout => 30, %h), $method eq 'HEAD' ? (head => 1) : ());
    return $r // { status => 0, headers => {}, body => '' };
}
my @gz = ('Accept-Encoding' => 'gzip, deflate');

# the common checks on a response that must be gzip of $orig
sub is_gzipped {
    my ($r, $orig, $what) = @_;
    subtest "$what: gzipped" => sub {
        is $r->{status}, 200, 'status 200';
        is $r->{headers}{'content-encoding'}, 'gzip', 'Content-Encoding: gzip, once';
        ok !exists $r->{headers}{'content-length'}, 'no Content-Length';
        is $r->{headers}{'transfer-encoding'}, 'chunked', 'chunked (HTTP/1.1)';
        like $r->{headers}{vary} // '', qr/^Accept-Encoding$/i, 'Vary: Accept-Encoding (once)';
        ok length($r->{body}) < length($orig), 'smaller than the original';
        is md5_hex(gunz($r->{body})), md5_hex($orig), 'decompresses to the original bytes';
    };
}
sub is_plain {
    my ($r, $orig, $what) = @_;
    subtest "$what: not compressed" => sub {
        ok !exists $r->{headers}{'content-encoding'}, 'no Content-Encoding';
        is md5_hex($r->{body}), md5_hex($orig), 'the original bytes' if defined $orig;
    };
}

# ---------------------------------------------------------------- static

{
    my $r = req('/page.html', @gz);
    is_gzipped($r, $page, 'static text/html');
    like $r->{headers}{etag} // '', qr{^W/"[^"]+"$}, 'static: strong ETag made weak';
    $r = req('/page.txt', @gz);
    is_gzipped($r, $page, 'static text/plain (gzip_types)');

    my $p = req('/page.html');
    is_plain($p, $page, 'no Accept-Encoding');
    is $p->{headers}{'content-length'}, length $page, '... Content-Length kept';
    like $p->{headers}{etag} // '', qr{^"[^"]+"$}, '... strong ETag kept';
    like $p->{headers}{vary} // '', qr/^Accept-Encoding$/i, '... Vary: Accept-Encoding all the same';

    is_plain(req('/page.html', 'Accept-Encoding' => 'gzip;q=0'), $page, 'gzip;q=0');
    is_plain(req('/page.html', 'Accept-Encoding' => 'gzip;q=0.000, identity'), $page, 'gzip;q=0.000');
    is_gzipped(req('/page.html', 'Accept-Encoding' => 'gzip;q=0.5'), $page, 'gzip;q=0.5');
    is_gzipped(req('/page.html', 'Accept-Encoding' => 'br;q=1, *;q=0.1'), $page, '*;q=0.1');
    is_plain(req('/page.html', 'Accept-Encoding' => 'br, deflate'), $page, 'no gzip offered');
    is_plain(req('/small.html', @gz), "<p>tiny</p>\n", 'under gzip_min_length 100');
    is_gzipped(req('/mid.html', @gz), 'x' x 500, 'over gzip_min_length');
    is_plain(req('/image.png', @gz), $page, 'image/png (not in gzip_types)');
    is_plain(req('/off/page.html', @gz), $page, 'gzip off');

    my $range = req('/page.html', @gz, Range => 'bytes=0-99');
    is $range->{status}, 206, 'Range: 206';
    is_plain($range, substr($page, 0, 100), '206');
    is $range->{headers}{'content-length'}, 100, '206: Content-Length 100';

    my $head = req('/page.html', @gz, -method => 'HEAD');
    is $head->{status}, 200, 'HEAD: 200';
    is_plain($head, undef, 'HEAD');
    is $head->{headers}{'content-length'}, length $page, 'HEAD: Content-Length of the file';

    my $etag = $p->{headers}{etag};
    my $nm = req('/page.html', @gz, 'If-None-Match' => $etag);
    is $nm->{status}, 304, 'If-None-Match: 304';
    is_plain($nm, '', '304');
    my $nc = req('/nocontent', @gz);
    is $nc->{status}, 204, 'return 204';
    is_plain($nc, '', '204');
    is $nc->{raw}, $nc->{raw} =~ s/\r\n\r\n.+//sr, '204: nothing after the head';

    # HTTP/1.0: no chunked, close-delimited
    my ($r10) = parse_response($s->http_get('/page.html', @gz));
    ok !exists $r10->{headers}{'content-encoding'}, 'HTTP/1.0 request: not compressed (gzip_http_version 1.1)';

    is_plain(req('/page.html', @gz, Via => '1.1 cache'), $page, 'Via present, gzip_proxied off');
    is_gzipped(req('/proxied_any/page.html', @gz, Via => '1.1 cache'), $page, 'Via present, gzip_proxied any');
}

# ---------------------------------------------------------------- bodies the filters pass through

{
    # big.bin is not compressed but still read through the filter chain in
    # pieces as the client takes them: two pipelined requests on one
    # connection both come back whole and in order
    my $req = "GET /big.bin HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n";
    my @r = parse_response($s->http($req . $req . "GET /page.html HTTP/1.1\r\nHost: localhost\r\n"
        . "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n", timeout => 30));
    is scalar @r, 3, 'pipelined: three responses';
    is md5_hex($r[0]{body} // ''), md5_hex($bin), 'pipelined: first 2.4 MiB body intact';
    is md5_hex($r[1]{body} // ''), md5_hex($bin), 'pipelined: second 2.4 MiB body intact';
    is md5_hex(gunz($r[2]{body} // '')), md5_hex($page), 'pipelined: then a gzipped one';

    # multipart ranges: the boundaries stay between their parts
    my $m = req('/big.bin', @gz, Range => 'bytes=0-9,1000000-1000009,-10');
    is $m->{status}, 206, 'multipart ranges: 206';
    my @parts = $m->{body} =~ /Content-Range: bytes (\d+)-(\d+)\/\d+\r\n\r\n(.{10})\r\n/sg;
    is_deeply \@parts, [ 0, 9, substr($bin, 0, 10), 1000000, 1000009, substr($bin, 1000000, 10),
        length($bin) - 10, length($bin) - 1, substr($bin, -10) ], 'multipart ranges: parts in order, right bytes';
}

# ---------------------------------------------------------------- gzip_static

{
    my $r = req('/pre/file.txt', @gz);
    is $r->{status}, 200, 'gzip_static: 200';
    is $r->{headers}{'content-encoding'}, 'gzip', 'gzip_static: Content-Encoding: gzip';
    is $r->{headers}{'content-length'}, length $pre_gz, 'gzip_static: Content-Length of file.gz';
    is md5_hex($r->{body}), md5_hex($pre_gz), 'gzip_static: the file.gz bytes, not compressed again';
    like $r->{headers}{vary} // '', qr/^Accept-Encoding$/i, 'gzip_static: Vary';
    my $p = req('/pre/file.txt');
    is_plain($p, $pre_plain, 'gzip_static without Accept-Encoding');
    is_plain(req('/pre/file.txt', 'Accept-Encoding' => 'gzip;q=0'), $pre_plain, 'gzip_static, gzip;q=0');
}

# ---------------------------------------------------------------- proxied

SKIP: {
    skip 'http_proxy module not built', 5 unless $upstream;
    my $r = req('/up/text', @gz);
    is_gzipped($r, $proxied, 'proxied Content-Length body');
    like $r->{headers}{etag} // '', qr{^W/"strong-1"$}, 'proxied: upstream strong ETag made weak';
    is_gzipped(req('/up/chunked', @gz), $proxied, 'proxied chunked body');
    my $e = req('/up/encoded', @gz);
    is $e->{headers}{'content-encoding'}, 'gzip', 'upstream Content-Encoding: gzip passes, once';
    is md5_hex(gunz($e->{body})), md5_hex($proxied), '... the upstream bytes untouched (one gunzip gives the text)';
}

# ---------------------------------------------------------------- FastCGI

SKIP: {
    skip 'php-fpm or the fastcgi module missing', 3 unless $fpm;
    my $want = join '', map { "php line $_ " . md5_hex($_) . "\n" } 1 .. 4000;
    my $r = req('/php/gen.php', @gz);
    is_gzipped($r, $want, 'PHP output');
    my $e = req('/php/encoded.php', @gz);
    is $e->{headers}{'content-encoding'}, 'gzip', 'PHP with its own Content-Encoding: gzip, once';
    is md5_hex(gunz($e->{body})), md5_hex($want), '... not compressed twice';
}

# ---------------------------------------------------------------- 100 MiB, bounded memory

SKIP: {
    skip 'no worker pid', 4 unless $worker && -r "/proc/$worker/status";
    my $size = 100 * 1024 * 1024;
    # hex digests compress about 2:1, so a worker that held the output would
    # hold some 50 MiB
    open my $fh, '>', "$dir/html/huge.txt" or die "huge.txt: $!";
    my ($n, $md5) = (0, Digest::MD5->new);
    while ($n < $size) {
        my $chunk = join '', map { sprintf("%09d %s %s\n", $n + $_, md5_hex($n + $_), md5_hex("x$_")) } 1 .. 1000;
        $chunk = substr($chunk, 0, $size - $n) if $n + length $chunk > $size;
        print {$fh} $chunk;
        $md5->add($chunk);
        $n += length $chunk;
    }
    close $fh or die "huge.txt: $!";
    my $want = $md5->hexdigest;
    my $mem = sub {
        open my $st, '<', "/proc/$worker/status" or return {};
        my %m;
        while (<$st>) { $m{$1} = $2 if /^(VmRSS|VmHWM):\s+(\d+) kB/ }
        return \%m;
    };
    req('/page.html', @gz);    # warm up: buffers and zlib state once
    my $before = $mem->();
    my $url = "http://127.0.0.1:" . $s->port . "/huge.txt";
    my ($rc, $out) = Test::Portico::run_bounded(300, '/bin/sh', '-c',
        "curl -s --max-time 280 -D '$dir/huge.head' -H 'Accept-Encoding: gzip' '$url' | tee '$dir/huge.gz' | gzip -dc | md5sum");
    my $after = $mem->();
    my ($got) = $out =~ /^([0-9a-f]{32})/m;
    is $got, $want, '100 MiB: decompresses to the original (md5)';
    like $s->read_file('huge.head') // '', qr/^Content-Encoding: gzip\r?$/mi, '100 MiB: gzipped';
    ok -s "$dir/huge.gz" < $size * 0.8, '100 MiB: compressed on the wire (' . (-s "$dir/huge.gz") . ' bytes)';
    my $growth = ($after->{VmHWM} // 0) - ($before->{VmRSS} // 0);
    if ($ENV{PORTICO_SANITIZER_DIR}) {
        # ASan keeps freed memory in quarantine: RSS says nothing there
        diag "100 MiB: peak RSS grew ${growth} kB (sanitizer build, not asserted)";
    } else {
        cmp_ok $growth, '<', 16 * 1024, "100 MiB: worker peak RSS grew ${growth} kB (VmRSS $before->{VmRSS} kB before, VmHWM $after->{VmHWM} kB after)";
    }
    unlink "$dir/html/huge.txt", "$dir/huge.gz";
}

$s->stop;
is $s->exit_code, 0, 'clean stop';
unlike $s->error_log, qr/\[(?:alert|emerg|crit)\]/, 'no alert/crit/emerg in error.log';
done_testing;

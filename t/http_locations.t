#!/usr/bin/perl
# location{} selection, checked against nginx's documented precedence
# (ngx_http_core_module "location"): "=" first, then the longest prefix,
# "^~" stops the regexes, regexes in config order, nested locations searched
# inside the winning prefix, named @locations only via internal redirects,
# regex captures in return / alias / try_files, internal, alias vs root.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(parse_response need_bin);

need_bin();

my $s = Test::Portico->new;
$s->write_file('html/index.html', "root index\n");
$s->write_file('html/r/file.txt', "from root\n");
$s->write_file('aliasdir/file.txt', "from alias\n");
$s->write_file('aliasdir/sub/deep.txt', "alias deep\n");
$s->write_file('files/one.txt', "capture file\n");
$s->write_file('html/files/two.txt', "try capture\n");
$s->write_file('html/int/page.html', "internal page\n");
$s->write_file('html/tf/exists.txt', "tf exists\n");

$s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        default_type text/plain;

        # the documentation's example, A..E
        location = / { return 200 "A"; }
        location / { return 200 "B"; }
        location /documents/ { return 200 "C"; }
        location ^~ /images/ { return 200 "D"; }
        location ~* \.(gif|jpg|jpeg)$ { return 200 "E"; }

        location = /exact.jpg { return 200 "exact-over-regex"; }
        location = /ex { return 200 "exact-ex"; }
        location /ex { return 200 "prefix-ex"; }

        location /a/ { return 200 "a"; }
        location /a/b/ { return 200 "a-b"; }
        location /img/ { return 200 "img"; }
        location ^~ /img/raw/ { return 200 "img-raw"; }

        # regex order: the first matching one in the file wins
        location ~ ^/order/ { return 200 "order-first"; }
        location ~ \.php$ { return 200 "php"; }
        location ~ /CaSe$ { return 200 "case-sensitive"; }

        location /n/ {
            location /n/deep/ { return 200 "n-deep"; }
            location ~ \.nx$ { return 200 "n-regex"; }
            return 200 "n";
        }
        location ^~ /s/ {
            location ~ \.sx$ { return 200 "s-nested-regex"; }
            return 200 "s";
        }

        location ~ ^/cap/(\w+)/(\d+)$ { return 200 "$2-$1"; }
        location ~ ^/al/(.+\.txt)$ { alias %%ROOT%%/files/$1; }
        location ~ ^/tc/(.+)$ { try_files /files/$1 =404; }
        location ~ \.txt$ { return 200 "txt-regex"; }

        location ^~ /r/ { root %%ROOT%%/html; }
        location ^~ /alias/ { alias %%ROOT%%/aliasdir/; }

        location ^~ /tf/ { try_files $uri @fallback; }
        location @fallback { return 200 "named:$uri"; }

        location ^~ /int/ { internal; }
        location ^~ /err/ { error_page 404 /int/page.html; return 404; }
        location ^~ /tint/ { try_files $uri /int/page.html; }
    }
CONF
$s->start;

sub req {
    my ($path, %h) = @_;
    my $r = $s->get($path, %h);
    return $r ? "$r->{status} $r->{body}" : 'no response';
}

# [uri, expected "status body", why]
my @cases = (
    ['/', '200 A', '"= /" matches only "/"'],
    ['/?x=1', '200 A', 'query does not take part in matching'],
    ['/index.html', '200 B', 'only "/" prefixes it'],
    ['/documents/document.html', '200 C', 'longest prefix'],
    ['/images/1.gif', '200 D', '^~ prefix: regexes not checked'],
    ['/documents/1.jpg', '200 E', 'regex beats a remembered prefix'],
    ['/DOCUMENTS/1.JPG', '200 E', '~* is caseless'],
    ['/x/CaSe', '200 case-sensitive', '~ matches exact case'],
    ['/x/case', '200 B', '~ does not match other case'],
    ['/exact.jpg', '200 exact-over-regex', '= wins over a matching regex'],
    ['/ex', '200 exact-ex', '= beside an equal prefix'],
    ['/ex/', '200 prefix-ex', '= does not match a longer URI'],
    ['/exa', '200 prefix-ex', 'prefix needs no slash boundary'],
    ['/a/x', '200 a', 'shorter prefix'],
    ['/a/b/c', '200 a-b', 'longest of two prefixes'],
    ['/a/b', '200 a', '"/a/b/" is longer than the URI'],
    ['/img/raw/x.jpg', '200 img-raw', 'longest prefix is ^~: no regex'],
    ['/img/x.jpg', '200 E', 'plain prefix /img/: regex still wins'],
    ['/order/x.php', '200 order-first', 'first regex in config order'],
    ['/y/x.php', '200 php', 'second regex when the first fails'],
    ['/n/deep/a', '200 n-deep', 'nested prefix'],
    ['/n/other', '200 n', 'nested miss: the outer prefix'],
    ['/n/a.nx', '200 n-regex', 'nested regex'],
    ['/n/deep/a.jpg', '200 E', 'outer regex beats a nested prefix'],
    ['/s/a.sx', '200 s-nested-regex', 'nested regex inside ^~'],
    ['/s/a.jpg', '200 s', '^~ stops the outer regexes'],
    ['/cap/abc/42', '200 42-abc', 'captures in return'],
    ['/al/one.txt', "200 capture file\n", 'captures in alias'],
    ['/tc/two.txt', "200 try capture\n", 'captures in try_files'],
    ['/tc/none.txt', '404', 'try_files =404 with captures'],
    ['/y/a.txt', '200 txt-regex', 'a later regex still matches other URIs'],
    ['/r/file.txt', "200 from root\n", 'root appends the full URI'],
    ['/alias/file.txt', "200 from alias\n", 'alias replaces the prefix'],
    ['/alias/sub/deep.txt', "200 alias deep\n", 'alias with subdirectories'],
    ['/tf/exists.txt', "200 tf exists\n", 'try_files: existing file'],
    ['/tf/missing', '200 named:/tf/missing', 'try_files falls back to a named location'],
    ['/@fallback', '200 B', 'a named location is not matched by URI'],
    ['/int/page.html', '404', 'internal: refused to a client'],
    ['/err/x', "404 internal page\n", 'internal: reached by error_page'],
    ['/tint/none', "200 internal page\n", 'internal: reached by try_files'],
    ['/%64ocuments/x', '200 C', 'matching uses the decoded URI'],
    ['/documents/../images/a.gif', '200 D', 'matching uses the normalized URI'],
    ['//documents//x', '200 C', 'merge_slashes before matching'],
);

for my $c (@cases) {
    my ($uri, $want, $why) = @$c;
    my $got = req($uri);
    if ($want =~ /^\d+$/) {
        like $got, qr/^$want\b/, "$uri → $want ($why)";
    } else {
        is $got, $want, "$uri → $want ($why)";
    }
}

$s->stop;
done_testing;

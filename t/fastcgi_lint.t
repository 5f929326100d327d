#!/usr/bin/perl
# `-t` warns about the classic FastCGI mistakes (issue 5): keepalive in an
# upstream used by fastcgi_pass without fastcgi_keep_conn on; a fastcgi_pass
# location with no SCRIPT_FILENAME; a location-level fastcgi_param that drops
# every inherited one; client data in PHP_VALUE / PHP_ADMIN_VALUE. A clean
# PHP config gets none of these warnings.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin);

need_bin();
my $s = Test::Portico->new;

my ($rc, $out) = $s->test_config(<<'CONF');
    upstream php { server 127.0.0.1:9000; keepalive 4; }
    include %%CONF%%/fastcgi_params;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /a { fastcgi_pass php; fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name; }
        location /b { fastcgi_pass 127.0.0.1:9000; }
        location /c {
            fastcgi_pass 127.0.0.1:9000;
            include %%CONF%%/fastcgi.conf;
            fastcgi_param PHP_VALUE "auto_prepend_file=$arg_f";
        }
    }
CONF
is $rc, 0, 'warnings do not fail -t';
like $out, qr/\[warn\] the upstream of this fastcgi_pass keeps idle connections \(keepalive\) but fastcgi_keep_conn is off/,
    'keepalive without fastcgi_keep_conn';
like $out, qr/\[warn\] fastcgi_pass without a SCRIPT_FILENAME param/, 'no SCRIPT_FILENAME';
like $out, qr/\[warn\] a CGI param set in the location "\/a" drops \d+ inherited param\(s\)/,
    'a location-level fastcgi_param drops the inherited ones';
like $out, qr/\[warn\] "PHP_VALUE" takes its value from the request \(\$arg_f\)/, 'client data in PHP_VALUE';
like $out, qr/portico\.conf:\d+/, 'warnings name file:line';

($rc, $out) = $s->test_config(<<'CONF');
    upstream php { server 127.0.0.1:9000; keepalive 4; }
    server {
        listen 127.0.0.1:%%PORT%%;
        location ~ \.php$ {
            try_files $fastcgi_script_name =404;
            fastcgi_pass php;
            fastcgi_keep_conn on;
            include %%CONF%%/fastcgi.conf;
        }
    }
CONF
is $rc, 0, 'a clean PHP config passes';
unlike $out, qr/\[warn\]/, 'and gets no warning';
done_testing;

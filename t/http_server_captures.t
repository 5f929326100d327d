#!/usr/bin/perl
# server_name with a regex: positional ($1) and named captures become
# variables for the request, as in nginx (e.g. a per-subdomain root).
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin);

need_bin();
my $s = Test::Portico->new;
$s->write_file('sites/alpha/index.html', "alpha site\n");
$s->write_file('sites/beta/index.html', "beta site\n");
$s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%% default_server;
        return 200 "default\n";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name ~^(?<sub>[a-z]+)\.example\.test$;
        root %%ROOT%%/sites/$sub;
        location = /who { return 200 "sub=$sub host=$host\n"; }
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name ~^www\.([a-z]+)\.org$;
        location / { return 200 "org=$1\n"; }
    }
CONF
$s->start;
is $s->get('/who', Host => 'alpha.example.test')->{body}, "sub=alpha host=alpha.example.test\n", 'named capture';
is $s->get('/', Host => 'alpha.example.test')->{body}, "alpha site\n", 'named capture in root';
is $s->get('/', Host => 'beta.example.test')->{body}, "beta site\n", 'another host, its own captures';
is $s->get('/who', Host => 'alpha.example.test')->{body}, "sub=alpha host=alpha.example.test\n", 'again';
is $s->get('/x', Host => 'www.portico.org')->{body}, "org=portico\n", 'positional capture $1';
is $s->get('/x', Host => 'nothing.test')->{body}, "default\n", 'no match: default server';
# a keep-alive client that changes Host gets the new captures
my $raw = $s->http("GET /who HTTP/1.1\r\nHost: alpha.example.test\r\n\r\n"
                 . "GET /who HTTP/1.1\r\nHost: beta.example.test\r\nConnection: close\r\n\r\n");
like $raw, qr/sub=alpha.*sub=beta/s, 'captures are per request on one connection';
done_testing;

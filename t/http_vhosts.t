#!/usr/bin/perl
# server{} selection by listen address and Host, with nginx's documented
# precedence (http/server_names.html): exact name, longest wildcard starting
# with "*", longest wildcard ending with "*", first matching regex in config
# order, then the default server of the address. A request without Host
# (HTTP/1.0) is matched against server_name "" and otherwise goes to the
# default server. $host and $server_name as nginx defines them.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(parse_response need_bin);

need_bin();

my $s = Test::Portico->new;
$s->conf(<<'CONF');
    default_type text/plain;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name first.test;
        return 200 "first|$host|$server_name";
    }
    server {
        listen 127.0.0.1:%%PORT%% default_server;
        listen 127.0.0.1:%%PORT2%%;
        server_name default.test;
        return 200 "default|$host|$server_name";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name example.com www.example.com;
        return 200 "exact|$host|$server_name";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name *.example.com;
        return 200 "head|$host";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name *.deep.example.com;
        return 200 "head-longer|$host";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name www.example.* mail.example.*;
        return 200 "tail|$host";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name ~^app\d+\.example\.com$;
        return 200 "regex-app|$host";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name ~^(www|api)\.regex\.test$;
        return 200 "regex-first|$host";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name ~^api\.regex\.test$;
        return 200 "regex-second|$host";
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name .dot.test;
        return 200 "dot|$host";
    }
    server {
        listen 127.0.0.1:%%PORT2%% default_server;
        server_name two.test;
        return 200 "two|$host|$server_name";
    }
    server {
        listen 127.0.0.1:%%PORT2%%;
        server_name "" nohost.test;
        return 200 "empty-name|$host|$server_name";
    }
CONF
$s->start;

sub ask {
    my ($port, $host, %opt) = @_;
    my $target = $opt{target} // '/';
    my $proto = $opt{proto} // 'HTTP/1.0';
    my $raw = "GET $target $proto\r\n" . (defined $host ? "Host: $host\r\n" : '') . "Connection: close\r\n\r\n";
    my ($r) = parse_response($s->http($raw, port => $port));
    return $r ? ($r->{status} == 200 ? $r->{body} : $r->{status}) : 'no response';
}

my ($p1, $p2) = ($s->port, $s->port2);
my @cases = (
    # [port, Host, expected body, why]
    [$p1, 'example.com', 'exact|example.com|example.com', 'exact name'],
    [$p1, 'www.example.com', 'exact|www.example.com|example.com', 'exact beats *.example.com and www.example.*; $server_name is the first name'],
    [$p1, 'a.example.com', 'head|a.example.com', 'wildcard *.example.com'],
    [$p1, 'x.y.example.com', 'head|x.y.example.com', '* covers several labels'],
    [$p1, 'a.deep.example.com', 'head-longer|a.deep.example.com', 'longest leading wildcard'],
    [$p1, 'www.example.org', 'tail|www.example.org', 'trailing wildcard www.example.*'],
    [$p1, 'mail.example.net', 'tail|mail.example.net', 'second name of the trailing wildcard server'],
    [$p1, 'app12.example.com', 'head|app12.example.com', 'leading wildcard beats a regex'],
    [$p1, 'www.regex.test', 'regex-first|www.regex.test', 'regex'],
    [$p1, 'api.regex.test', 'regex-first|api.regex.test', 'first matching regex in config order'],
    [$p1, 'dot.test', 'dot|dot.test', '.dot.test matches the bare name'],
    [$p1, 'sub.dot.test', 'dot|sub.dot.test', '.dot.test matches subdomains'],
    [$p1, 'unknown.test', 'default|unknown.test|default.test', 'no match: default_server, not the first server'],
    [$p1, 'EXAMPLE.COM', 'exact|example.com|example.com', 'Host is caseless; $host lowercased'],
    [$p1, 'example.com:8080', 'exact|example.com|example.com', 'port dropped from Host'],
    [$p1, 'example.com.', 'exact|example.com|example.com', 'trailing dot dropped'],
    [$p1, undef, 'default|default.test|default.test', 'HTTP/1.0 without Host: default server; $host is server_name'],
    [$p1, 'example.com', 'default|unknown.test|default.test', 'absolute-form authority wins over Host',
        target => 'http://unknown.test/'],
    [$p2, undef, 'empty-name||', 'no Host: server_name "" wins over the default; $host is its (empty) primary name'],
    [$p2, 'unknown.test', 'two|unknown.test|two.test', 'second port: its own default_server'],
    [$p2, 'default.test', 'default|default.test|default.test', 'a server listening on two ports'],
    [$p2, 'example.com', 'two|example.com|two.test', 'names of other ports are not seen'],
    [$p1, 'first.test', 'first|first.test|first.test', 'the first server is reachable by name'],
);
for my $c (@cases) {
    my ($port, $host, $want, $why, %opt) = @$c;
    is ask($port, $host, %opt), $want, ($host // '(no Host)') . " on port " . ($port == $p1 ? 1 : 2) . ": $why";
}

# refusals: HTTP/1.1 without Host, bad Host characters, two Hosts
is ask($p1, undef, proto => 'HTTP/1.1'), 400, 'HTTP/1.1 without Host: 400';
is ask($p1, 'a b'), 400, 'space in Host: 400';
is ask($p1, 'a/b'), 400, 'slash in Host: 400';
is ask($p1, 'a..b'), 400, '".." in Host: 400';
{
    my ($r) = parse_response($s->http("GET / HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n"));
    is $r && $r->{status}, 400, 'two Host fields: 400';
}

$s->stop;
done_testing;

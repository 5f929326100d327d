#!/usr/bin/perl
# Issue 4, acceptance 2: the same requests through nginx and through Portico,
# both configured with the same server{} block, to build/peers/fcgi_echo,
# which answers with every FastCGI param it received. The two param sets
# must be equal except for the intended differences listed in %ALLOWED
# below (each one explained in conf/fastcgi_params and
# core/cgi/header_policy.h). Every difference is printed with diag; an
# unlisted one fails the request's test.
#
# nginx gets a copy of conf/fastcgi_params whose only change is
# SERVER_SOFTWARE nginx/$nginx_version (it has no $portico_version). Without
# /usr/sbin/nginx (or `nginx` in PATH) the file is skipped.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin free_port wait_for repo_dir);
use Test::Portico::Peers qw(find_tool);

need_bin();
my $nginx = find_tool('/usr/sbin/nginx', 'nginx')
    or plan skip_all => 'nginx not installed: nothing to compare with';
my $build = $ENV{PORTICO_BUILD} || repo_dir() . '/build';
my $echo_bin = "$build/peers/fcgi_echo";
-x $echo_bin or BAIL_OUT("$echo_bin missing: run make");

my $have_ip6 = eval { require IO::Socket::IP; 1 }
    && IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0, Listen => 1) ? 1 : 0;

my $s = Test::Portico->new;
my $dir = $s->dir;
my $echo_port = free_port();
my $echo = Test::Portico::Peers->spawn(
    cmd => [ $echo_bin, '-l', "127.0.0.1:$echo_port" ],
    log => "$dir/echo.log", addr => "127.0.0.1:$echo_port", name => 'fcgi_echo',
);
my $pport = $s->port;
my $nport = free_port($pport, $echo_port);

# conf/fastcgi_params for nginx: the one line nginx cannot read
my $params = $s->read_file(repo_dir() . '/conf/fastcgi_params') // die 'no conf/fastcgi_params';
(my $nparams = $params) =~ s{portico/\$portico_version}{nginx/\$nginx_version}
    or die 'conf/fastcgi_params: SERVER_SOFTWARE line not found';
$s->write_file('conf/nginx_fastcgi_params', $nparams);
$s->write_file("html/$_", "<?php\n") for qw(index.php app.php dir/index.php);

# The server block both servers run; only the port and the params file vary.
sub server_block {
    my ($port, $params_file) = @_;
    my $listen6 = $have_ip6 ? "listen [::1]:$port;" : '';
    return <<"CONF";
    server {
        listen 127.0.0.1:$port;
        $listen6
        server_name example.test;
        root $dir/html;
        client_max_body_size 1m;

        location ~ [^/]\\.php(/|\$) {
            fastcgi_split_path_info ^(.+?\\.php)(/.*)\$;
            fastcgi_pass 127.0.0.1:$echo_port;
            include $params_file;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param PATH_INFO \$fastcgi_path_info if_not_empty;
            fastcgi_param PATH_TRANSLATED \$document_root\$fastcgi_path_info;
        }
        location / {
            fastcgi_pass 127.0.0.1:$echo_port;
            fastcgi_index index.php;
            include $params_file;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
        }
        location /override/ {
            fastcgi_pass 127.0.0.1:$echo_port;
            include $params_file;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param HTTP_X_USER fixed-by-config;
            fastcgi_param X_EMPTY \$http_x_nothing if_not_empty;
        }
    }
CONF
}

$s->conf(server_block($pport, "%%CONF%%/fastcgi_params"));
$s->start;

mkdir "$dir/nginx";
mkdir "$dir/nginx/$_" for qw(logs tmp);
$s->write_file('nginx/nginx.conf', <<"CONF" . server_block($nport, "$dir/conf/nginx_fastcgi_params") . "}\n");
daemon off;
master_process off;
error_log $dir/nginx/logs/error.log info;
pid $dir/nginx/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log $dir/nginx/logs/access.log;
    client_body_temp_path $dir/nginx/tmp/body;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    proxy_temp_path $dir/nginx/tmp/proxy;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
CONF
my $ngx = eval {
    Test::Portico::Peers->spawn(
        cmd => [ $nginx, '-p', "$dir/nginx/", '-e', "$dir/nginx/logs/startup.log", '-c', "$dir/nginx/nginx.conf" ],
        log => "$dir/nginx/logs/stderr.log", addr => "127.0.0.1:$nport", name => 'nginx',
    );
};
if (!$ngx) {
    plan skip_all => "nginx present but did not start (not the server under test): $@";
}
my $nginx_version = (Test::Portico::run_bounded(10, $nginx, '-v'))[1] =~ m{nginx/(\S+)} ? $1 : '?';

# ---------------------------------------------------------------- client

# Sends raw bytes to host:port, reads until close or 5 s.
sub send_raw {
    my ($host, $port, $raw) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $sock = $host =~ /:/
        ? IO::Socket::IP->new(PeerHost => $host, PeerPort => $port, Timeout => 5)
        : IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 5);
    return undef unless $sock;
    binmode $sock;
    my @pieces = ref $raw ? @$raw : ($raw);
    for my $p (@pieces) {
        syswrite($sock, $p) // last;
        sleep 0.05 if @pieces > 1;
    }
    my $sel = IO::Select->new($sock);
    my ($in, $deadline) = ('', time + 5);
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $in .= $buf;
    }
    close $sock;
    return $in;
}

# All responses on the connection: [{ status, params => {NAME => [VALUE...]},
# stdin, echoed }], params keeping every repeat of a name in order.
sub ask {
    my ($case, $port) = @_;
    my $raw = send_raw($case->{host} // '127.0.0.1', $port, $case->{req});
    my @out;
    for my $r (parse_response($raw // '', head => ($case->{req_is_head} ? 1 : 0))) {
        my %p;
        for my $line (split /\n/, $r->{body}) {
            my ($k, $v) = $line =~ /^([^=]*)=(.*)$/s or next;
            push @{ $p{$k} }, $v;
        }
        push @out, { status => $r->{status}, params => \%p, stdin => $r->{headers}{'x-echo-stdin'},
                     echoed => defined $r->{headers}{'x-echo-params'} ? 1 : 0 };
    }
    return @out ? \@out : [ { status => 0, params => {}, echoed => 0 } ];
}

# ---------------------------------------------------------------- intended differences

# Each: name => sub ($nginx_value, $portico_value, $case) -> reason if allowed,
# undef if not. undef values mean "absent".
my @HOP = qw(HTTP_CONNECTION HTTP_KEEP_ALIVE HTTP_TE HTTP_TRAILER HTTP_TRANSFER_ENCODING HTTP_UPGRADE
    HTTP_PROXY_CONNECTION);
my %ALLOWED = (
    SERVER_SOFTWARE => sub {
        my ($n, $p) = @_;
        defined $n && defined $p && $n eq "nginx/$nginx_version" && $p =~ m{^portico/\S+$}
            ? 'names itself (RFC 3875 4.1.17)' : undef;
    },
    REMOTE_PORT => sub {
        my ($n, $p) = @_;
        defined $n && defined $p && $n =~ /^\d+$/ && $p =~ /^\d+$/ ? 'another client connection' : undef;
    },
    SERVER_PORT => sub {
        my ($n, $p) = @_;
        defined $n && defined $p && $n eq $nport && $p eq $pport ? 'each server listens on its own port' : undef;
    },
    HTTP_PROXY => sub {
        my ($n, $p) = @_;
        defined $n && !defined $p ? 'httpoxy (CVE-2016-5385): never passed' : undef;
    },
    (map {
        my $name = $_;
        $name => sub { my ($n, $p) = @_; defined $n && !defined $p ? 'hop-by-hop (RFC 9110 7.6.1)' : undef }
    } @HOP),
    HTTP_CONTENT_TYPE => sub {
        my ($n, $p, $c, $all) = @_;
        defined $n && !defined $p && ($all->{CONTENT_TYPE} // '') eq $n ? 'only as CONTENT_TYPE (RFC 3875 4.1.18)' : undef;
    },
    HTTP_CONTENT_LENGTH => sub {
        my ($n, $p) = @_;
        defined $n && !defined $p ? 'only as CONTENT_LENGTH (RFC 3875 4.1.18)' : undef;
    },
    HTTP_PROXY_AUTHORIZATION => sub {
        my ($n, $p) = @_;
        defined $n && !defined $p ? 'credentials for this hop, not passed by default' : undef;
    },
    # HTTP_HOST is $host$is_request_port$request_port (as nginx >= 1.29.5),
    # from the authority: the absolute-form target wins over Host, the name
    # is lower-cased, and it is there even when the client sent no Host.
    HTTP_HOST => sub {
        my ($n, $p, $c) = @_;
        return undef unless defined $p && exists $c->{authority};
        return $p eq $c->{authority} ? "from the request authority ($c->{authority})" : undef;
    },
);

# $n and $p are the value lists (undef: absent) of one name.
sub allowed_reason {
    my ($name, $n, $p, $case, $nall) = @_;
    # nginx < 1.23 sends a repeated header as repeated params; Portico joins
    # them into one, with "; " for Cookie and ", " otherwise, as nginx >= 1.23.
    if ($n && $p && @$n > 1 && @$p == 1) {
        my $sep = $name eq 'HTTP_COOKIE' ? '; ' : ', ';
        return "repeats joined with '$sep' (nginx >= 1.23)" if $p->[0] eq join($sep, @$n);
        return undef;
    }
    return undef if ($n && @$n > 1) || ($p && @$p > 1);
    my ($nv, $pv) = ($n ? $n->[0] : undef, $p ? $p->[0] : undef);
    if (my $rule = $ALLOWED{$name}) {
        my $why = $rule->($nv, $pv, $case, { map { $_ => $nall->{$_}[0] } keys %$nall });
        return $why if defined $why;
    }
    # the header names a Connection header lists are hop-by-hop too
    if ($name =~ /^HTTP_(.+)$/ && defined $nv && !defined $pv && $case->{connection_listed}
        && grep { $_ eq $1 } @{ $case->{connection_listed} }) {
        return 'listed in Connection: hop-by-hop';
    }
    return undef;
}

# ---------------------------------------------------------------- requests

sub r11 { my ($line, @h) = @_; join('', "$line HTTP/1.1\r\n", map({ "$_\r\n" } 'Host: example.test', @h, 'Connection: close'), "\r\n") }
sub r10 { my ($line, @h) = @_; join('', "$line HTTP/1.0\r\n", map({ "$_\r\n" } @h), "\r\n") }

my @cases = (
    { name => 'plain GET', req => r11('GET /index.php') },
    { name => 'query', req => r11('GET /index.php?a=1&b=two&c=%20x%2F') },
    { name => 'empty query', req => r11('GET /index.php?') },
    { name => 'PATH_INFO split', req => r11('GET /app.php/some/path?x=y') },
    { name => 'PATH_INFO "/"', req => r11('GET /app.php/') },
    { name => 'PATH_INFO encoded', req => r11('GET /app.php/a%20b/%C3%A9') },
    { name => 'encoded slash in script', req => r11('GET /dir%2Findex.php') },
    { name => 'encoded slash in PATH_INFO', req => r11('GET /app.php/x%2Fy') },
    { name => 'trailing slash index', req => r11('GET /dir/') },
    { name => 'non-php location', req => r11('GET /plain/x%20y.txt?k') },
    { name => 'dot segments', req => r11('GET /dir/../index.php') },
    { name => 'double slash', req => r11('GET //index.php') },
    { name => 'POST Content-Length',
      req => r11('POST /index.php', 'Content-Type: application/x-www-form-urlencoded', 'Content-Length: 7') . 'a=1&b=2' },
    { name => 'POST chunked',
      req => r11('POST /index.php', 'Content-Type: text/plain', 'Transfer-Encoding: chunked') . "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" },
    { name => 'PUT empty body', req => r11('PUT /index.php', 'Content-Length: 0') },
    { name => 'HEAD', req => r11('HEAD /index.php?h=1'), req_is_head => 1 },
    { name => 'OPTIONS', req => r11('OPTIONS /index.php') },
    { name => 'underscore header dropped', req => r11('GET /index.php', 'X-Forwarded_For: 6.6.6.6', 'X-Forwarded-For: 1.2.3.4') },
    { name => 'Proxy header (httpoxy)', req => r11('GET /index.php', 'Proxy: http://evil.test:8080/') },
    { name => 'duplicate headers', req => r11('GET /index.php', 'X-Dup: a', 'X-Dup: b', 'Accept: text/html', 'Accept: */*') },
    { name => 'duplicate Cookie', req => r11('GET /index.php', 'Cookie: a=1', 'Cookie: b=2; c=3') },
    { name => 'Host with port', req => r10('GET /index.php', 'Host: example.test:8080'), authority => 'example.test:8080' },
    { name => 'Host upper case', req => r10('GET /index.php', 'Host: EXAMPLE.Test'), authority => 'example.test' },
    { name => 'absolute-form target',
      req => "GET http://abs.test:81/index.php?q=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
      # REQUEST_URI is the path and query only, as nginx's $request_uri
      authority => 'abs.test:81' },
    { name => 'HTTP/1.0 without Host', req => r10('GET /index.php'), authority => 'example.test' },
    { name => 'Authorization', req => r11('GET /index.php', 'Authorization: Basic dXNlcjpwYXNz') },
    { name => 'Proxy-Authorization', req => r11('GET /index.php', 'Proxy-Authorization: Basic cHJveHk6cHc=') },
    { name => 'Connection-listed headers',
      req => "GET /index.php HTTP/1.1\r\nHost: example.test\r\nConnection: close, X-Hop, x-other\r\nX-Hop: 1\r\nX-Other: 2\r\nX-Kept: 3\r\n\r\n",
      connection_listed => [qw(X_HOP X_OTHER)] },
    { name => 'Keep-Alive, TE, Upgrade', req => r11('GET /index.php', 'Keep-Alive: timeout=5', 'TE: trailers', 'Upgrade: h2c') },
    { name => 'Content-Type on GET', req => r11('GET /index.php', 'Content-Type: text/x-odd') },
    { name => 'browser-like headers',
      req => r11('GET /index.php?page=2', 'User-Agent: Mozilla/5.0 (X11; Linux x86_64)', 'Accept-Language: fr-FR,fr;q=0.9',
                 'Accept-Encoding: gzip, deflate, br', 'Referer: http://example.test/', 'X-Requested-With: XMLHttpRequest') },
    { name => 'mixed-case and empty header', req => r11('GET /index.php', 'x-MiXeD-CaSe: Value', 'X-Empty:') },
    { name => 'user param overrides header', req => r11('GET /override/x.php', 'X-User: from-client', 'X-Nothing:') },
    { name => 'invalid header name dropped', req => r11('GET /index.php', 'X-A.B: 1', 'X-Ok: 2') },
    { name => 'obs-fold header', req => r11('GET /index.php', "X-Folded: a\r\n  b") },
    { name => 'NUL in path', req => r11('GET /index%00.php') },
    { name => '%0a in PATH_INFO (CVE-2019-11043)', req => r11('GET /app.php/%0a.php?a'),
      portico_status => 400, why => 'CR/LF/NUL paths are refused before any split' },
    { name => 'keep-alive then second request',
      req => "GET /index.php?first HTTP/1.1\r\nHost: example.test\r\n\r\nGET /index.php?second HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n" },
    { name => 'header sent in pieces', req => [ "GET /index.php?p HTTP/1.1\r\nHo", "st: example.test\r\nX-Sl", "ow: yes\r\nConnection: close\r\n\r\n" ] },
);
push @cases, { name => 'IPv6 client', host => '::1', req => r11('GET /index.php?v6') } if $have_ip6;

plan tests => 2 * @cases + scalar(grep { $_->{todo} } @cases) + 3;

my %EVERYWHERE = map { $_ => 1 } qw(SERVER_SOFTWARE REMOTE_PORT SERVER_PORT HTTP_CONNECTION);
sub show { my $v = shift; $v ? join(' + ', map { "'$_'" } @$v) : '(absent)' }

my (%seen_diff, $ndiff, $nresp);
for my $c (@cases) {
    my $name = $c->{name};
    my $nr = ask($c, $nport);
    my $pr = ask($c, $pport);
    my @nst = map { $_->{status} } @$nr;
    my @pst = map { $_->{status} } @$pr;
    my (@bad, @ok, @todo);
    if (my $st = $c->{portico_status}) {
        # nginx forwards what it should not (unsafe): we answer $st ourselves
        is "@pst", $st, "$name: Portico answers $st (nginx: @nst) [$c->{why}]";
        pass "$name: not compared";
        next;
    }
    is "@pst", "@nst", "$name: same status (@nst)";
    for my $i (0 .. $#$nr) {
        my ($n, $p) = ($nr->[$i], $pr->[$i] // { params => {} });
        next unless $n->{echoed};
        $nresp++;
        my %names = map { $_ => 1 } keys %{ $n->{params} }, keys %{ $p->{params} };
        for my $k (sort keys %names) {
            my ($nv, $pv) = ($n->{params}{$k}, $p->{params}{$k});
            next if $nv && $pv && join("\0", @$nv) eq join("\0", @$pv);
            my $why = allowed_reason($k, $nv, $pv, $c, $n->{params});
            my $line = sprintf '%s: nginx %s | portico %s', $k, show($nv), show($pv);
            if (defined $why) {
                $seen_diff{$k}++;
                # the ones every request has are counted in the summary only
                push @ok, "$line  [$why]" unless $EVERYWHERE{$k} && !($k eq 'HTTP_CONNECTION' && $nv->[0] ne 'close');
            }
            elsif ($c->{todo} && $c->{todo}{$k}) { push @todo, $line }
            else { push @bad, $line }
        }
        push @bad, "request body bytes: nginx $n->{stdin} | portico " . ($p->{stdin} // '(none)')
            if ($n->{stdin} // '') ne ($p->{stdin} // '');
    }
    diag "$name:\n" . join('', map { "    allowed  $_\n" } @ok) . join('', map { "    UNLISTED $_\n" } @bad, @todo)
        if @ok || @bad || @todo;
    $ndiff += @bad + @todo;
    ok !@bad, "$name: params equal except intended differences";
    if ($c->{todo}) {
        local $TODO = join '; ', values %{ $c->{todo} };
        ok !@todo, "$name: " . join(', ', sort keys %{ $c->{todo} }) . ' as nginx';
    }
}

# The comparison can see what it claims to: nginx really passed the variables
# we filter, so their absence on our side is a difference that was checked.
ok $seen_diff{HTTP_PROXY}, 'nginx passed HTTP_PROXY and Portico did not (the comparison sees it)';
ok $seen_diff{HTTP_X_HOP} && $seen_diff{HTTP_TE} && $seen_diff{HTTP_TRANSFER_ENCODING}, 'hop-by-hop differences were observed';
diag "nginx $nginx_version vs Portico: " . scalar(@cases) . " requests, "
    . join(', ', map { "$_ x$seen_diff{$_}" } sort keys %seen_diff) . " intended differences, "
    . ($ndiff // 0) . " unlisted, over $nresp echoed responses";
is $s->error_log =~ /\[(?:alert|emerg|crit)\]/ ? 'alert' : 'clean', 'clean', 'no alert/crit in Portico error log';

$ngx->stop;
$echo->stop;
$s->stop;

#!/bin/bash
# The sqlite3 shell creates, fills and queries $1/test.db in rollback
# journal mode (the default). WAL mode maps test.db-shm shared and
# writable, which kvmbox's host files do not support yet.
cd "$1" || exit 1
rm -f test.db test.db-journal
sqlite3 test.db <<'SQL'
create table fruit (id integer primary key, name text not null, price real);
begin;
insert into fruit (name, price) values ('apple', 1.5), ('banana', 0.25), ('cherry', 7);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 500)
insert into fruit (name, price) select 'item' || i, i * 0.5 from n;
commit;
create index fruit_name on fruit (name);
pragma journal_mode = truncate;
update fruit set price = price * 2 where name like 'item1%';
delete from fruit where id % 7 = 0;
vacuum;
SQL
echo "sqlite3 status $?"
sqlite3 test.db 'select count(*), round(sum(price), 2), min(name), max(name) from fruit; pragma integrity_check; pragma journal_mode;'
sqlite3 -header -column test.db "select id, name, price from fruit where name in ('apple', 'banana', 'cherry') or id between 100 and 103 order by id"

// The test fixture: a tiny film-rental application (40 films in 8 themes, 12 customers, ~100
// rentals) and the RecVector mapping over it. Deterministic: the same data on every run.

const THEMES = [
  ['SPACE', 'astronauts exploring a distant galaxy aboard a starship', 'rocket', 'planet'],
  ['KITCHEN', 'chefs competing to cook the perfect dinner in a busy restaurant', 'recipe', 'soup'],
  ['STALLION', 'cowboys herding wild horses across the western prairie', 'ranch', 'saddle'],
  ['PIRATE', 'pirates searching for buried treasure on the high seas', 'ship', 'island'],
  ['DETECTIVE', 'a detective solving a murder mystery in a foggy city', 'clue', 'suspect'],
  ['DINOSAUR', 'paleontologists discovering living dinosaurs in a jungle', 'fossil', 'volcano'],
  ['PARIS', 'two strangers falling in love during a summer in Paris', 'kiss', 'cafe'],
  ['HOOPS', 'a basketball team fighting for the national championship', 'coach', 'dunk'],
];
const MOODS = ['Epic', 'Quiet', 'Funny', 'Dark', 'Touching'];

export const films = THEMES.flatMap(([word, plot, a, b], t) =>
  MOODS.map((mood, m) => ({
    id: t * 5 + m + 1,
    title: `${word} ${mood.toUpperCase()} ${['ONE', 'TWO', 'THREE', 'FOUR', 'FIVE'][m]}`,
    description: `A ${mood} story of ${plot}, with a ${a} and a ${b}.`,
    rate: [0.99, 2.99, 4.99][(t + m) % 3],
    theme: t,
  })),
);

// Customers 1..10 each rent 10 films: all 5 of their favourite theme, 3 of a second theme and 2
// of a third. Customers 11 and 12 have no rentals (cold start; 12 is left to the logInteraction
// test).
export const customers = Array.from({ length: 12 }, (_, i) => i + 1);
export const rentals = [];
for (let c = 1; c <= 10; c++) {
  const fav = (c - 1) % 8;
  const second = (fav + 3) % 8;
  const third = (fav + 5) % 8;
  const picks = [
    ...[0, 1, 2, 3, 4].map((m) => fav * 5 + m + 1),
    ...[(c % 5), ((c + 1) % 5), ((c + 2) % 5)].map((m) => second * 5 + m + 1),
    ...[(c % 5), ((c + 3) % 5)].map((m) => third * 5 + m + 1),
  ];
  picks.forEach((film, i) => rentals.push({ customer: c, film, day: c + i }));
}

const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

export const fixtureSql = `
CREATE TABLE film (film_id integer PRIMARY KEY, title text NOT NULL, description text NOT NULL,
                   rental_rate numeric(4,2) NOT NULL);
CREATE TABLE customer (customer_id integer PRIMARY KEY);
CREATE TABLE rental (rental_id serial PRIMARY KEY, customer_id integer NOT NULL REFERENCES customer,
                     film_id integer NOT NULL REFERENCES film, rented_at timestamptz NOT NULL);
CREATE INDEX ON rental (customer_id);
INSERT INTO film VALUES
${films.map((f) => `  (${f.id}, ${lit(f.title)}, ${lit(f.description)}, ${f.rate})`).join(',\n')};
INSERT INTO customer SELECT generate_series(1, ${customers.length});
INSERT INTO rental (customer_id, film_id, rented_at) VALUES
${rentals.map((r) => `  (${r.customer}, ${r.film}, timestamptz '2024-01-01 12:00+00' + interval '${r.day} days')`).join(',\n')};
`;

export const mapping = {
  version: 1,
  users: { table: 'customer', id: 'customer_id' },
  entities: {
    table: 'film',
    id: 'film_id',
    features: [
      { name: 'title', kind: 'text', column: 'title' },
      { name: 'description', kind: 'text', column: 'description' },
    ],
  },
  interactions: [
    { name: 'rental', table: 'rental', user_column: 'customer_id', entity_column: 'film_id', timestamp_column: 'rented_at' },
  ],
};

export const CHEAP_FILTER = 'rental_rate < 1';

package guard

import "strings"

// Denied topics are recognized by meaning as far as a method without a model allows. Besides
// the topic's own words (stems of its name, definition and examples), a topic takes in the
// built-in concepts its words name: a concept is a field of everyday words, in English,
// German, French, Spanish, Italian and Portuguese, that people use when they ask about the
// topic without naming it ("my chest feels tight" for a medical diagnosis, "where would you
// park 20k" for investment advice). A concept joins a topic when one of its trigger words is
// among the topic's stems. A text is about the topic when it holds, beside the topic's own
// keywords, distinct concept words enough to reach the topic's minimum, and speaks as a request
// or about the writer ("I", "my", "how do", "soll ich", "j'ai"...): concept words alone in a
// report or an article do not block.
//
// What this cannot do: it knows only the fields below (health, money and investments,
// weapons, law, drugs); a paraphrase in words outside them, or in a language not listed, is
// missed; and a personal text that happens to use two words of a field is blocked. The
// optional topic_classifier model covers what a word list cannot.

// concept is a field of words: triggers link it to a topic, members count in texts.
type concept struct {
	triggers, members string
}

var concepts = []concept{
	{ // health: symptoms, the body, illness and medicines
		triggers: `illness illnesses ill symptom symptoms medication medications medicine medicines treatment
			diagnose diagnosing diagnosis health medical disease diseases doctor sick prescribing prescription`,
		members: `pain painful ache aching hurt hurts hurting sore throbbing fever temperature rash itch itchy
			cough coughing dizzy dizziness nausea nauseous vomit vomiting swollen swelling lump bleeding
			sweat sweats sweating drenched tight tightness breath breathless numb numbness fatigue headache
			migraine cramp cramps inflamed infection infected
			chest heart lung lungs stomach belly eye eyes throat neck knee knees joint joints skin kidney liver
			bowel bladder
			medicine medication pill pills tablet tablets dose dosage antibiotic antibiotics ibuprofen
			paracetamol aspirin ointment
			illness disease sick serious worried cancer diabetes flu virus symptom symptoms
			schmerz schmerzen bauchschmerzen kopfschmerzen fieber husten schwindel ubel ubelkeit geschwollen
			ausschlag juckreiz atemnot brust herz bauch kopf auge hals rucken knie haut magen tabletten
			medikament medikamente arznei krank krankheit
			douleur douleurs fievre toux vertige vertiges nausee gonfle eruption demangeaison poitrine coeur
			ventre tete gorge genou peau medicament medicaments comprime malade maladie
			dolor duele fiebre tos mareo mareos nauseas hinchado sarpullido picor pecho corazon estomago
			cabeza garganta cuello espalda rodilla piel medicamento pastilla pastillas enfermo enfermedad
			dolore febbre tosse vertigini gonfio petto cuore pancia testa gola collo schiena ginocchio
			farmaco pastiglie malato malattia
			dor febre tontura inchado peito coracao barriga cabeca joelho remedio doente doenca`,
	},
	{ // money and investments
		triggers: `stock stocks fund funds invest investing investment investments savings money cryptocurrency
			cryptocurrencies portfolio shares financial finance trading`,
		members: `stock stocks share shares equity equities fund funds etf etfs index tracker bond bonds crypto
			bitcoin ethereum gold savings pension retirement portfolio returns dividend dividends invest
			investing investment broker brokerage nvidia tesla apple shares earnings
			aktien aktie fonds anleihen ersparnisse rente anlegen borse rendite geerbt
			actions epargne bourse retraite placement placer rendement
			acciones fondos ahorros bolsa jubilacion invertir inversion rentabilidad indexados
			azioni fondi risparmi pensione investire rendimento
			acoes poupanca aposentadoria`,
	},
	{ // weapons and explosives
		triggers: `weapon weapons explosive explosives ammunition bomb bombs rifle rifles gun guns firearm firearms`,
		members: `weapon weapons gun guns pistol pistols rifle rifles firearm firearms shotgun handgun semi
			automatic trigger silencer suppressor ammunition ammo bullet bullets cartridge cartridges gunpowder
			explosive explosives bomb bombs detonator detonate grenade fertilizer projectile blast bang fuse
			waffe waffen pistole gewehr munition sprengsatz sprengstoff bombe zunder dungemittel
			arme armes pistolet fusil munitions poudre explosif bombe douilles detonateur
			arma armas pistola municion polvora explosivo bomba detonador
			fucile munizioni esplosivo
			espingarda municao`,
	},
	{ // law and lawsuits
		triggers: `legal law laws lawsuit lawyer attorney court sue`,
		members: `lawyer attorney sue suing lawsuit court judge contract tenant landlord evict eviction divorce
			custody liable liability lawful illegal rights claim settlement
			anwalt klage klagen gericht vertrag mieter vermieter scheidung sorgerecht
			avocat tribunal proces contrat locataire divorce
			abogado demanda tribunal contrato inquilino divorcio
			avvocato causa tribunale contratto divorzio
			advogado processo contrato divorcio`,
	},
	{ // drugs
		triggers: `drug drugs narcotics cannabis cocaine`,
		members: `cocaine heroin meth methamphetamine cannabis weed mdma ecstasy lsd fentanyl opioid opioids
			dealer grow high dose
			kokain heroin gras cocaina erba`,
	},
}

// requestCues are words of a request or of the writer's own situation.
var requestCues = set(`i i'm i've i'd i'll my me mine myself we our us should would could can how where which
	ich mir mich mein meine meinen meiner meinem wir unser soll sollte kann wie wo welche
	je j'ai moi mon ma mes nous notre comment ou quel quelle vaut dois
	yo tengo me mi mis nosotros nuestro debo puedo como donde cual conviene
	io ho mio mia miei devo posso dove quale
	eu meu minha meus devo posso onde qual
	ik mijn moet kan hoe waar welke`)

// conceptStems returns the member stems of the concepts a topic's stems trigger.
func conceptStems(topic map[string]struct{}) map[string]struct{} {
	out := map[string]struct{}{}
	for _, c := range concepts {
		linked := false
		for _, w := range strings.Fields(c.triggers) {
			if _, ok := topic[stem(w)]; ok {
				linked = true
				break
			}
		}
		if !linked {
			continue
		}
		for _, w := range strings.Fields(c.members) {
			out[stem(w)] = struct{}{}
		}
	}
	return out
}
